"""The storage conformance suite: every behaviour trax's services rely on from a ``Storage``.

Use it from a test module of your plugin (pytest with anyio, which trax's
``test`` extra brings)::

    import pytest
    from trax.testing.storage import StorageConformance
    from my_plugin import MyStorage

    class TestMyStorage(StorageConformance):
        @pytest.fixture
        def make_storage(self, tmp_path):
            # each call: a new, *unopened* instance over the same backing store
            return lambda: MyStorage(path=tmp_path / "db")

Every test gets a fresh backing store (the ``make_storage`` fixture is
function-scoped). Set ``durable = False`` for a backend whose data does not
outlive its instance (the built-in ``memory``): the tests that reopen the store
or use a second instance on it are then skipped. ``shared = False`` skips only
the second-instance test (a single-process backend that is durable).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

import pytest

from trax.domain.base import utcnow
from trax.domain.chat import ChatDirection, ChatMessage
from trax.domain.errors import Conflict, NotFound
from trax.domain.ids import IdGenerator
from trax.domain.keys import ApiKey, RateLimitOverride
from trax.domain.sources import Source, SourceKind, SourceStatus
from trax.domain.studios import Studio, StudioStatus
from trax.interfaces import Delete, Insert, Storage, Update

__all__ = ["StorageConformance"]

ACCT_A = "acct_conformance_a"
ACCT_B = "acct_conformance_b"


class _Make:
    """Entities with fresh time-ordered ids, as the services create them."""

    def __init__(self) -> None:
        self.ids = IdGenerator()

    def studio(self, account: str = ACCT_A, *, name: str = "Studio", id: str | None = None) -> Studio:
        now = utcnow()
        return Studio(id=id or self.ids.new("studio"), account_id=account, created_at=now, updated_at=now, name=name)

    def source(self, studio: Studio, *, path: str | None = None, stream_key_hash: str | None = None) -> Source:
        now = utcnow()
        sid = self.ids.new("src")
        return Source(
            id=sid,
            account_id=studio.account_id,
            created_at=now,
            updated_at=now,
            studio_id=studio.id,
            name="Cam",
            kind=SourceKind.SRT,
            path=path or f"inputs/srt-{sid.lower()}",
            stream_key_hash=stream_key_hash,
        )

    def chat(self, studio: Studio) -> ChatMessage:
        now = utcnow()
        return ChatMessage(
            id=self.ids.new("msg"),
            account_id=studio.account_id,
            created_at=now,
            updated_at=now,
            studio_id=studio.id,
            text="hello",
            direction=ChatDirection.OUTBOUND,
            platform="trax",
            author_name="ci",
            sent_at=now,
        )

    def key(self, account: str = ACCT_A, *, key_hash: str | None = None) -> ApiKey:
        now = utcnow()
        kid = self.ids.new("key")
        return ApiKey(
            id=kid,
            account_id=account,
            created_at=now,
            updated_at=now,
            name="ci",
            prefix="sk_live_abcd",
            key_hash=key_hash or f"hash-{kid}",
            scopes=("studios:read", "studios:write"),
            rate_limit=RateLimitOverride(capacity=10, refill_per_second=2.5),
        )


def _later(entity: Any, **changes: Any) -> Any:
    """A new version of ``entity``, as an update use case makes it."""
    return replace(entity, updated_at=entity.updated_at + timedelta(milliseconds=1), **changes)


@pytest.mark.anyio
class StorageConformance:
    """Subclass it as ``Test<Something>`` and provide the ``make_storage`` fixture."""

    durable: ClassVar[bool] = True
    """False for a backend whose data lives only as long as its instance."""
    shared: ClassVar[bool | None] = None
    """Whether two open instances over one backing store see each other's writes at once
    (as several server processes need); ``None`` means the same as ``durable``."""

    # --- fixtures ------------------------------------------------------------------

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def make_storage(self) -> Callable[[], Storage]:
        raise NotImplementedError("override the make_storage fixture: return a callable making an unopened Storage")

    @pytest.fixture
    async def storage(self, make_storage: Callable[[], Storage]) -> AsyncIterator[Storage]:
        store = make_storage()
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    @pytest.fixture
    def make(self) -> _Make:
        return _Make()

    # --- CRUD ------------------------------------------------------------------------

    async def test_ping(self, storage: Storage) -> None:
        await storage.ping()

    async def test_insert_then_get_round_trips_every_field(self, storage: Storage, make: _Make) -> None:
        studio = replace(make.studio(name='Ünïcode ✓ "quoted" \u0000 nul'), description="d", live_since=utcnow())
        key = make.key()
        await storage.apply([Insert(studio), Insert(key)])
        assert await storage.get(Studio, ACCT_A, studio.id) == studio
        got = await storage.get(ApiKey, ACCT_A, key.id)
        assert got == key
        assert got is not None and got.rate_limit == RateLimitOverride(capacity=10, refill_per_second=2.5)

    async def test_get_missing_is_none(self, storage: Storage, make: _Make) -> None:
        assert await storage.get(Studio, ACCT_A, make.ids.new("studio")) is None

    async def test_get_is_scoped_by_kind(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        await storage.apply([Insert(studio)])
        assert await storage.get(Source, ACCT_A, studio.id) is None

    async def test_update_replaces_the_stored_entity(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        await storage.apply([Insert(studio)])
        renamed = _later(studio, name="Renamed", description=None, status=StudioStatus.LIVE)
        await storage.apply([Update(renamed)])
        assert await storage.get(Studio, ACCT_A, studio.id) == renamed

    async def test_delete_removes_from_get_and_list(self, storage: Storage, make: _Make) -> None:
        a, b = make.studio(), make.studio()
        await storage.apply([Insert(a), Insert(b)])
        await storage.apply([Delete(Studio, ACCT_A, a.id)])
        assert await storage.get(Studio, ACCT_A, a.id) is None
        assert [s.id for s in await storage.list(Studio, ACCT_A)] == [b.id]

    async def test_insert_of_an_existing_id_conflicts(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        await storage.apply([Insert(studio)])
        with pytest.raises(Conflict):
            await storage.apply([Insert(replace(studio, name="Other"))])
        assert await storage.get(Studio, ACCT_A, studio.id) == studio

    async def test_update_of_a_missing_entity_is_not_found(self, storage: Storage, make: _Make) -> None:
        with pytest.raises(NotFound):
            await storage.apply([Update(make.studio())])

    async def test_delete_of_a_missing_entity_is_not_found(self, storage: Storage, make: _Make) -> None:
        with pytest.raises(NotFound):
            await storage.apply([Delete(Studio, ACCT_A, make.ids.new("studio"))])

    async def test_empty_apply_is_a_no_op(self, storage: Storage) -> None:
        await storage.apply([])

    # --- tenancy -----------------------------------------------------------------------

    async def test_another_account_cannot_see_or_touch_an_entity(self, storage: Storage, make: _Make) -> None:
        mine = make.studio(ACCT_A)
        await storage.apply([Insert(mine)])
        assert await storage.get(Studio, ACCT_B, mine.id) is None
        assert await storage.list(Studio, ACCT_B) == []
        with pytest.raises(NotFound):
            await storage.apply([Delete(Studio, ACCT_B, mine.id)])
        with pytest.raises(NotFound):
            await storage.apply([Update(_later(replace(mine, account_id=ACCT_B), name="stolen"))])
        assert await storage.get(Studio, ACCT_A, mine.id) == mine

    async def test_lists_of_two_accounts_do_not_mix(self, storage: Storage, make: _Make) -> None:
        a = [make.studio(ACCT_A) for _ in range(3)]
        b = [make.studio(ACCT_B) for _ in range(2)]
        await storage.apply([Insert(s) for s in (a[0], b[0], a[1], b[1], a[2])])
        assert [s.id for s in await storage.list(Studio, ACCT_A)] == [s.id for s in a]
        assert [s.id for s in await storage.list(Studio, ACCT_B)] == [s.id for s in b]

    # --- lists and keyset paging -------------------------------------------------------

    async def test_list_is_ascending_by_id_whatever_the_insert_order(self, storage: Storage, make: _Make) -> None:
        studios = [make.studio() for _ in range(9)]
        shuffled = studios[:]
        random.Random(7).shuffle(shuffled)
        for s in shuffled:
            await storage.apply([Insert(s)])
        assert [s.id for s in await storage.list(Studio, ACCT_A)] == [s.id for s in studios]

    async def test_list_honours_limit_and_after(self, storage: Storage, make: _Make) -> None:
        studios = [make.studio() for _ in range(7)]
        await storage.apply([Insert(s) for s in studios])
        ids = [s.id for s in studios]
        assert [s.id for s in await storage.list(Studio, ACCT_A, limit=3)] == ids[:3]
        assert [s.id for s in await storage.list(Studio, ACCT_A, after=ids[2], limit=3)] == ids[3:6]
        assert [s.id for s in await storage.list(Studio, ACCT_A, after=ids[5], limit=3)] == ids[6:]
        assert await storage.list(Studio, ACCT_A, after=ids[6], limit=3) == []
        # ``after`` need not be a stored id: paging resumes after a deleted row
        assert [s.id for s in await storage.list(Studio, ACCT_A, after=ids[2] + "0", limit=2)] == ids[3:5]

    async def test_list_is_scoped_by_kind(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        src = make.source(studio)
        await storage.apply([Insert(studio), Insert(src)])
        assert [s.id for s in await storage.list(Studio, ACCT_A)] == [studio.id]
        assert [s.id for s in await storage.list(Source, ACCT_A)] == [src.id]

    async def test_list_filters_by_parent_and_pages_within_it(self, storage: Storage, make: _Make) -> None:
        one, two = make.studio(), make.studio()
        await storage.apply([Insert(one), Insert(two)])
        mine: list[str] = []
        for i in range(6):
            src = make.source(one if i % 2 == 0 else two)
            if src.studio_id == one.id:
                mine.append(src.id)
            await storage.apply([Insert(src)])
        assert [s.id for s in await storage.list(Source, ACCT_A, parent_id=one.id)] == mine
        first = await storage.list(Source, ACCT_A, parent_id=one.id, limit=2)
        rest = await storage.list(Source, ACCT_A, parent_id=one.id, after=first[-1].id, limit=10)
        assert [s.id for s in first + rest] == mine
        assert await storage.list(Source, ACCT_A, parent_id=make.ids.new("studio")) == []

    async def test_an_update_that_moves_parent_moves_the_entity_between_lists(
        self, storage: Storage, make: _Make
    ) -> None:
        one, two = make.studio(), make.studio()
        src = make.source(one)
        await storage.apply([Insert(one), Insert(two), Insert(src)])
        await storage.apply([Update(_later(src, studio_id=two.id))])
        assert await storage.list(Source, ACCT_A, parent_id=one.id) == []
        assert [s.id for s in await storage.list(Source, ACCT_A, parent_id=two.id)] == [src.id]

    async def test_keyset_walk_under_concurrent_inserts_and_deletes(self, storage: Storage, make: _Make) -> None:
        """Items present for the whole walk are seen exactly once, in order; churn never repeats one."""
        rng = random.Random(11)
        # ids minted up front and inserted later land both before and after the walk's position
        pool = [make.studio() for _ in range(60)]
        initial = pool[::2]
        late = pool[1::2]
        await storage.apply([Insert(s) for s in initial])
        doomed = {s.id for s in rng.sample(initial, 12)}
        survivors = [s.id for s in initial if s.id not in doomed]
        stop = asyncio.Event()

        async def churn() -> None:
            todo: list[Any] = [Insert(s) for s in late] + [Delete(Studio, ACCT_A, i) for i in doomed]
            rng.shuffle(todo)
            for w in todo:
                await storage.apply([w])
                await asyncio.sleep(0)
            stop.set()

        seen: list[str] = []
        task = asyncio.create_task(churn())
        try:
            after: str | None = None
            for _ in range(len(pool)):  # bounded: a backend that never advances must fail, not hang
                page = await storage.list(Studio, ACCT_A, after=after, limit=3)
                seen.extend(s.id for s in page)
                if len(page) < 3:
                    break
                after = page[-1].id
                await asyncio.sleep(0)
        finally:
            await task
        assert stop.is_set()
        assert seen == sorted(set(seen)), "a walk must be strictly ascending (no repeats)"
        assert set(survivors) <= set(seen), "a walk skipped items that existed throughout"
        assert set(seen) <= {s.id for s in pool}

    # --- unique indexes ----------------------------------------------------------------

    async def test_duplicate_unique_value_conflicts(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        first = make.source(studio, path="inputs/srt-dup")
        await storage.apply([Insert(studio), Insert(first)])
        with pytest.raises(Conflict):
            await storage.apply([Insert(make.source(studio, path="inputs/srt-dup"))])
        assert [s.id for s in await storage.list(Source, ACCT_A)] == [first.id]
        found = await storage.find_unique(Source, "source.path", "inputs/srt-dup")
        assert found is not None and found.id == first.id

    async def test_unique_values_are_deployment_wide(self, storage: Storage, make: _Make) -> None:
        a, b = make.studio(ACCT_A), make.studio(ACCT_B)
        await storage.apply([Insert(a), Insert(b), Insert(make.source(a, path="inputs/srt-shared"))])
        with pytest.raises(Conflict):
            await storage.apply([Insert(make.source(b, path="inputs/srt-shared"))])
        found = await storage.find_unique(Source, "source.path", "inputs/srt-shared")
        assert found is not None and found.account_id == ACCT_A

    async def test_find_unique_misses(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        await storage.apply([Insert(studio), Insert(make.source(studio, path="inputs/srt-x"))])
        assert await storage.find_unique(Source, "source.path", "inputs/srt-y") is None
        assert await storage.find_unique(Source, "source.stream_key", "inputs/srt-x") is None
        # the index holds a source, so asking for another kind finds nothing
        assert await storage.find_unique(Studio, "source.path", "inputs/srt-x") is None

    async def test_delete_frees_unique_values(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        old = make.source(studio, path="inputs/srt-free", stream_key_hash="sk-hash")
        await storage.apply([Insert(studio), Insert(old)])
        await storage.apply([Delete(Source, ACCT_A, old.id)])
        assert await storage.find_unique(Source, "source.path", "inputs/srt-free") is None
        new = make.source(studio, path="inputs/srt-free", stream_key_hash="sk-hash")
        await storage.apply([Insert(new)])
        found = await storage.find_unique(Source, "source.stream_key", "sk-hash")
        assert found is not None and found.id == new.id

    async def test_update_frees_old_unique_values_and_takes_new_ones(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        src = make.source(studio, path="inputs/srt-before", stream_key_hash="k1")
        await storage.apply([Insert(studio), Insert(src)])
        moved = _later(src, path="inputs/srt-after", stream_key_hash=None)
        await storage.apply([Update(moved)])
        assert await storage.find_unique(Source, "source.path", "inputs/srt-before") is None
        assert await storage.find_unique(Source, "source.stream_key", "k1") is None
        assert await storage.find_unique(Source, "source.path", "inputs/srt-after") == moved
        await storage.apply([Insert(make.source(studio, path="inputs/srt-before", stream_key_hash="k1"))])

    async def test_update_keeping_its_own_unique_values_is_allowed(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        src = make.source(studio, path="inputs/srt-keep")
        await storage.apply([Insert(studio), Insert(src)])
        await storage.apply([Update(_later(src, status=SourceStatus.LIVE))])
        found = await storage.find_unique(Source, "source.path", "inputs/srt-keep")
        assert found is not None and found.status is SourceStatus.LIVE

    async def test_update_into_a_taken_unique_value_conflicts(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        a = make.source(studio, path="inputs/srt-a")
        b = make.source(studio, path="inputs/srt-b")
        await storage.apply([Insert(studio), Insert(a), Insert(b)])
        with pytest.raises(Conflict):
            await storage.apply([Update(_later(b, path="inputs/srt-a"))])
        assert await storage.get(Source, ACCT_A, b.id) == b
        assert await storage.find_unique(Source, "source.path", "inputs/srt-b") == b

    async def test_concurrent_inserts_of_one_unique_value_admit_exactly_one(
        self, storage: Storage, make: _Make
    ) -> None:
        studio = make.studio()
        await storage.apply([Insert(studio)])
        racers = [make.source(studio, path="inputs/srt-race") for _ in range(8)]
        results = await asyncio.gather(*(storage.apply([Insert(s)]) for s in racers), return_exceptions=True)
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, Conflict) for r in results if r is not None)
        assert len(await storage.list(Source, ACCT_A)) == 1

    # --- apply(): atomic batches ---------------------------------------------------------

    async def test_a_batch_writes_several_rows(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        srcs = [make.source(studio) for _ in range(3)]
        key = make.key()
        await storage.apply([Insert(studio), *(Insert(s) for s in srcs), Insert(key)])
        assert [s.id for s in await storage.list(Source, ACCT_A, parent_id=studio.id)] == [s.id for s in srcs]
        assert await storage.get(ApiKey, ACCT_A, key.id) == key

    async def test_a_batch_failing_on_a_unique_value_changes_nothing(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        taken = make.source(studio, path="inputs/srt-taken")
        await storage.apply([Insert(studio), Insert(taken)])
        fresh = make.studio()
        renamed = _later(studio, name="renamed")
        with pytest.raises(Conflict):
            await storage.apply([Insert(fresh), Update(renamed), Insert(make.source(studio, path="inputs/srt-taken"))])
        assert await storage.get(Studio, ACCT_A, fresh.id) is None
        assert await storage.get(Studio, ACCT_A, studio.id) == studio

    async def test_a_batch_failing_on_a_missing_row_changes_nothing(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        src = make.source(studio, path="inputs/srt-kept")
        await storage.apply([Insert(studio), Insert(src)])
        with pytest.raises(NotFound):
            await storage.apply(
                [
                    Delete(Source, ACCT_A, src.id),
                    Update(_later(studio, name="changed")),
                    Delete(Studio, ACCT_A, make.ids.new("studio")),
                ]
            )
        assert await storage.get(Source, ACCT_A, src.id) == src
        assert await storage.get(Studio, ACCT_A, studio.id) == studio
        # the unique value the failed delete would have freed is still held
        with pytest.raises(Conflict):
            await storage.apply([Insert(make.source(studio, path="inputs/srt-kept"))])

    async def test_a_batch_failing_a_compare_and_set_changes_nothing(self, storage: Storage, make: _Make) -> None:
        old = make.key()
        await storage.apply([Insert(old)])
        new = make.key()
        retired = _later(old, revoked_at=utcnow())
        with pytest.raises(Conflict):
            await storage.apply([Insert(new), Update(retired, expect_updated_at=old.updated_at - timedelta(seconds=1))])
        assert await storage.get(ApiKey, ACCT_A, new.id) is None
        assert await storage.get(ApiKey, ACCT_A, old.id) == old

    async def test_a_batch_may_delete_and_reuse_a_unique_value(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        old = make.source(studio, path="inputs/srt-reuse")
        await storage.apply([Insert(studio), Insert(old)])
        new = make.source(studio, path="inputs/srt-reuse")
        await storage.apply([Delete(Source, ACCT_A, old.id), Insert(new)])
        assert await storage.find_unique(Source, "source.path", "inputs/srt-reuse") == new

    # --- parents and children ----------------------------------------------------------

    async def test_a_child_without_its_parent_is_refused(self, storage: Storage, make: _Make) -> None:
        missing = make.studio()
        with pytest.raises(NotFound):
            await storage.apply([Insert(make.source(missing))])
        with pytest.raises(NotFound):
            await storage.apply([Insert(make.chat(missing))])
        # a parent of the same id in another account is not this child's parent
        theirs = make.studio(ACCT_B)
        await storage.apply([Insert(theirs)])
        with pytest.raises(NotFound):
            await storage.apply([Insert(replace(make.source(theirs), account_id=ACCT_A))])
        # the refusal takes the whole batch with it
        fresh = make.studio()
        with pytest.raises(NotFound):
            await storage.apply([Insert(fresh), Insert(make.source(missing))])
        assert await storage.get(Studio, ACCT_A, fresh.id) is None
        assert await storage.list(Source, ACCT_A) == []
        assert await storage.list(ChatMessage, ACCT_A) == []

    async def test_a_parent_and_its_children_in_one_batch(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        src, msg = make.source(studio), make.chat(studio)
        await storage.apply([Insert(studio), Insert(src), Insert(msg)])
        assert [s.id for s in await storage.list(Source, ACCT_A, parent_id=studio.id)] == [src.id]
        assert [m.id for m in await storage.list(ChatMessage, ACCT_A, parent_id=studio.id)] == [msg.id]

    async def test_an_update_onto_a_missing_parent_is_refused(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        src = make.source(studio)
        await storage.apply([Insert(studio), Insert(src)])
        with pytest.raises(NotFound):
            await storage.apply([Update(_later(src, studio_id=make.ids.new("studio")))])
        assert await storage.get(Source, ACCT_A, src.id) == src

    async def test_deleting_a_parent_that_keeps_a_child_conflicts_and_changes_nothing(
        self, storage: Storage, make: _Make
    ) -> None:
        studio = make.studio()
        src, msg = make.source(studio), make.chat(studio)
        await storage.apply([Insert(studio), Insert(src), Insert(msg)])
        # as a cascade that missed one child: the source goes, the message would be orphaned
        with pytest.raises(Conflict):
            await storage.apply(
                [
                    Delete(Source, ACCT_A, src.id),
                    Update(_later(studio, name="going"), expect_updated_at=studio.updated_at),
                    Delete(Studio, ACCT_A, studio.id),
                ]
            )
        assert await storage.get(Studio, ACCT_A, studio.id) == studio
        assert await storage.get(Source, ACCT_A, src.id) == src
        assert await storage.get(ChatMessage, ACCT_A, msg.id) == msg
        # the path the failed batch would have freed is still held
        assert await storage.find_unique(Source, "source.path", src.path) == src

    async def test_deleting_a_parent_with_all_its_children_or_after_moving_them(
        self, storage: Storage, make: _Make
    ) -> None:
        one, two, three = make.studio(), make.studio(), make.studio()
        a, b, moved = make.source(one), make.source(two), make.source(three)
        await storage.apply([Insert(one), Insert(two), Insert(three), Insert(a), Insert(b), Insert(moved)])
        await storage.apply([Delete(Source, ACCT_A, a.id), Delete(Studio, ACCT_A, one.id)])
        assert await storage.get(Studio, ACCT_A, one.id) is None
        # a child moved to another parent in the same batch no longer holds the deleted one
        await storage.apply([Update(_later(moved, studio_id=two.id)), Delete(Studio, ACCT_A, three.id)])
        assert sorted(s.id for s in await storage.list(Source, ACCT_A, parent_id=two.id)) == sorted([b.id, moved.id])

    async def test_racing_child_creation_against_parent_deletion_leaves_no_orphan(
        self, storage: Storage, make_storage: Callable[[], Storage], make: _Make
    ) -> None:
        """The services' own steps (read, then write) against each other; only apply's rule can keep it sound.

        A deletion lists the children and deletes them with the parent; a creation
        checks the parent and inserts a child. Whichever loses gets ``NotFound``
        (no parent any more) or ``Conflict`` (a child appeared), never an orphan.
        For shared backends the two sides use two instances, as two servers would.
        """
        shared = self.durable if self.shared is None else self.shared
        other = make_storage() if shared else storage
        if other is not storage:
            await other.open()
        rng = random.Random(5)
        outcomes: dict[str, int] = {}
        try:
            for _ in range(30):
                studio = make.studio()
                await storage.apply([Insert(studio)])

                async def create(studio: Studio = studio) -> None:
                    if await storage.get(Studio, ACCT_A, studio.id) is None:
                        raise NotFound("gone before the insert")
                    for _ in range(rng.randrange(3)):
                        await asyncio.sleep(0)
                    await storage.apply([Insert(make.source(studio) if rng.random() < 0.5 else make.chat(studio))])

                async def delete(studio: Studio = studio) -> None:
                    children: list[Any] = [*await other.list(Source, ACCT_A, parent_id=studio.id)]
                    children += await other.list(ChatMessage, ACCT_A, parent_id=studio.id)
                    for _ in range(rng.randrange(3)):
                        await asyncio.sleep(0)
                    await other.apply(
                        [Delete(type(c), ACCT_A, c.id) for c in children] + [Delete(Studio, ACCT_A, studio.id)]
                    )

                racers = [create(), delete()] if rng.random() < 0.5 else [delete(), create()]
                async with asyncio.timeout(30):
                    results = await asyncio.gather(*racers, return_exceptions=True)
                for r in results:
                    assert r is None or isinstance(r, NotFound | Conflict), repr(r)
                    outcomes[type(r).__name__] = outcomes.get(type(r).__name__, 0) + 1
                gone = await storage.get(Studio, ACCT_A, studio.id) is None
                left: list[Any] = [*await storage.list(Source, ACCT_A, parent_id=studio.id)]
                left += await storage.list(ChatMessage, ACCT_A, parent_id=studio.id)
                assert not (gone and left), f"orphaned {[c.id for c in left]} of {studio.id}"
                assert gone or any(isinstance(r, Conflict) for r in results), "a delete failed without a conflict"
        finally:
            if other is not storage:
                await other.close()
        assert outcomes.get("NoneType", 0) >= 30, outcomes  # one side or the other went through each round

    # --- compare-and-set -----------------------------------------------------------------

    async def test_compare_and_set_update(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        await storage.apply([Insert(studio)])
        v2 = _later(studio, status=StudioStatus.STARTING)
        await storage.apply([Update(v2, expect_updated_at=studio.updated_at)])
        stale = _later(studio, name="lost update")
        with pytest.raises(Conflict):
            await storage.apply([Update(stale, expect_updated_at=studio.updated_at)])
        assert await storage.get(Studio, ACCT_A, studio.id) == v2

    async def test_compare_and_set_of_a_missing_row_is_not_found(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        with pytest.raises(NotFound):
            await storage.apply([Update(studio, expect_updated_at=studio.updated_at)])

    async def test_concurrent_compare_and_set_admits_exactly_one(self, storage: Storage, make: _Make) -> None:
        studio = make.studio()
        await storage.apply([Insert(studio)])
        versions = [_later(studio, name=f"writer {i}") for i in range(8)]
        results = await asyncio.gather(
            *(storage.apply([Update(v, expect_updated_at=studio.updated_at)]) for v in versions),
            return_exceptions=True,
        )
        winners = [v for v, r in zip(versions, results, strict=True) if r is None]
        assert len(winners) == 1
        assert all(isinstance(r, Conflict) for r in results if r is not None)
        assert await storage.get(Studio, ACCT_A, studio.id) == winners[0]

    # --- touch_keys ------------------------------------------------------------------------

    async def test_touch_keys_records_last_use_without_changing_the_version(
        self, storage: Storage, make: _Make
    ) -> None:
        a, b, untouched = make.key(ACCT_A), make.key(ACCT_B), make.key(ACCT_A)
        await storage.apply([Insert(a), Insert(b), Insert(untouched)])
        when_a, when_b = utcnow(), utcnow() + timedelta(seconds=3)
        await storage.touch_keys({a.id: when_a, b.id: when_b, make.ids.new("key"): when_a})
        got_a = await storage.get(ApiKey, ACCT_A, a.id)
        got_b = await storage.get(ApiKey, ACCT_B, b.id)
        assert got_a is not None and got_a.last_used_at == when_a and got_a.updated_at == a.updated_at
        assert got_b is not None and got_b.last_used_at == when_b
        assert await storage.get(ApiKey, ACCT_A, untouched.id) == untouched
        # the key is still found by its hash, and a compare-and-set on its version still holds
        assert await storage.find_unique(ApiKey, "api_key.hash", a.key_hash) == got_a
        await storage.apply([Update(_later(a, name="renamed"), expect_updated_at=a.updated_at)])

    async def test_touch_keys_with_nothing_is_a_no_op(self, storage: Storage) -> None:
        await storage.touch_keys({})

    # --- durability and sharing -------------------------------------------------------------

    async def test_an_acknowledged_apply_survives_reopening(
        self, storage: Storage, make_storage: Callable[[], Storage], make: _Make
    ) -> None:
        if not self.durable:
            pytest.skip("this backend is not durable")
        studio = make.studio()
        await storage.apply([Insert(studio)])
        await storage.close()
        again = make_storage()
        await again.open()
        try:
            assert await again.get(Studio, ACCT_A, studio.id) == studio
        finally:
            await again.close()
            await storage.open()

    async def test_a_second_instance_sees_writes_at_once(
        self, storage: Storage, make_storage: Callable[[], Storage], make: _Make
    ) -> None:
        if not (self.durable if self.shared is None else self.shared):
            pytest.skip("this backend is not shared between instances")
        other = make_storage()
        await other.open()
        try:
            studio = make.studio()
            await storage.apply([Insert(studio)])
            assert await other.get(Studio, ACCT_A, studio.id) == studio
            await other.apply([Delete(Studio, ACCT_A, studio.id)])
            assert await storage.get(Studio, ACCT_A, studio.id) is None
        finally:
            await other.close()
