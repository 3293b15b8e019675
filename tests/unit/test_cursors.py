"""Cursors: opaque, tamper-evident, bound to one list; keyset walks never skip or repeat."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.helpers import make_services, make_storage
from trax.domain.errors import InvalidRequest
from trax.domain.ids import IdGenerator
from trax.domain.pages import MAX_LIMIT, CursorCodec, clamp_limit
from trax.domain.paths import new_source_path
from trax.domain.sources import Source, SourceKind
from trax.interfaces import Delete, Insert
from trax.services import Principal

KEY = b"k" * 40
ids = st.from_regex(r"\A[a-z]{2,6}_[0-9A-HJKMNP-TV-Z]{26}\Z")
scopes = st.sampled_from(["studio:", "source:studio_A", "source:studio_B", "api_key:", "chat_message:studio_A"])


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing checks: CI is noisy
@given(scope=scopes, last_id=ids)
def test_round_trip(scope: str, last_id: str) -> None:
    codec = CursorCodec(KEY)
    cursor = codec.encode(scope, last_id)
    assert codec.decode(scope, cursor) == last_id
    assert last_id not in cursor  # opaque: not the id in plain sight
    assert cursor.isascii() and "=" not in cursor and "+" not in cursor and "/" not in cursor


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing checks: CI is noisy
@given(scope=scopes, last_id=ids, data=st.data())
def test_any_edit_is_refused(scope: str, last_id: str, data: st.DataObject) -> None:
    codec = CursorCodec(KEY)
    cursor = codec.encode(scope, last_id)
    i = data.draw(st.integers(min_value=0, max_value=len(cursor) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. "
    ch = data.draw(st.sampled_from(alphabet).filter(lambda c: c != cursor[i]))
    how = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    if how == "replace":
        tampered = cursor[:i] + ch + cursor[i + 1 :]
    elif how == "insert":
        tampered = cursor[:i] + ch + cursor[i:]
    elif how == "delete":
        tampered = cursor[:i] + cursor[i + 1 :]
    else:
        tampered = cursor[:i]
    if not tampered:
        assert codec.decode(scope, tampered) is None  # empty cursor: start at the beginning
        return
    with pytest.raises(InvalidRequest) as err:
        codec.decode(scope, tampered)
    assert err.value.param == "cursor"


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing checks: CI is noisy
@given(garbage=st.text(min_size=1, max_size=600))
def test_garbage_is_refused_never_crashes(garbage: str) -> None:
    with pytest.raises(InvalidRequest):
        CursorCodec(KEY).decode("studio:", garbage)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing checks: CI is noisy
@given(garbage=st.binary(min_size=1, max_size=300))
def test_well_formed_base64_without_our_mac_is_refused(garbage: bytes) -> None:
    import base64

    cursor = base64.urlsafe_b64encode(garbage).rstrip(b"=").decode()
    with pytest.raises(InvalidRequest):
        CursorCodec(KEY).decode("studio:", cursor)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing checks: CI is noisy
@given(a=scopes, b=scopes, last_id=ids)
def test_cross_list_and_cross_deployment_cursors_are_refused(a: str, b: str, last_id: str) -> None:
    codec = CursorCodec(KEY)
    cursor = codec.encode(a, last_id)
    if a != b:
        with pytest.raises(InvalidRequest):
            codec.decode(b, cursor)
    with pytest.raises(InvalidRequest):
        CursorCodec(b"another deployment's key").decode(a, cursor)


def test_limits() -> None:
    assert clamp_limit(None) == 50
    assert clamp_limit(1) == 1
    assert clamp_limit(10_000) == MAX_LIMIT
    for bad in (0, -1):
        with pytest.raises(InvalidRequest) as err:
            clamp_limit(bad)
        assert err.value.param == "limit"


# --- keyset walks under concurrent inserts and deletes, through the services ----------------

# Between two page fetches, another writer inserts sources (with ids that may sort anywhere,
# as ids minted by another process would) and deletes some that exist.
op = st.one_of(
    st.tuples(st.just("insert"), st.integers(min_value=0, max_value=3000), st.booleans()),
    st.tuples(st.just("delete"), st.integers(min_value=0, max_value=10_000), st.booleans()),
)
scenario = st.fixed_dictionaries(
    {
        "initial": st.lists(st.integers(min_value=0, max_value=3000), min_size=0, max_size=40),
        "limit": st.integers(min_value=1, max_value=7),
        "ops": st.lists(st.lists(op, max_size=4), max_size=30),
    }
)


def _source(account: str, studio: str, ms: int, salt: int) -> Source:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    gen = IdGenerator(lambda: 1_700_000_000_000 + ms)
    return Source(
        id=gen.new("src"),
        account_id=account,
        created_at=now,
        updated_at=now,
        studio_id=studio,
        name=f"s{salt}",
        kind=SourceKind.SRT,
        path=new_source_path("srt"),
    )


async def _walk(kind: str, tmp: Path, sc: dict[str, object]) -> None:
    storage = make_storage(kind, tmp)
    await storage.open()
    try:
        svc = make_services(storage)
        acct = await svc.accounts.create("walker")
        actor = Principal.operator(acct.id)
        studio = (await svc.studios.create(actor, name="A")).id
        other = (await svc.studios.create(actor, name="B")).id
        live: dict[str, Source] = {}
        for n, ms in enumerate(sc["initial"]):  # type: ignore[attr-defined]
            src = _source(acct.id, studio, ms, n)
            await storage.apply([Insert(src)])
            live[src.id] = src
        stable = set(live)  # existed at the start; loses every id deleted during the walk
        seen: list[str] = []
        cursor: str | None = None
        ops = list(sc["ops"])  # type: ignore[call-overload]
        salt = 10_000
        for _ in range(10_000):
            page = await svc.sources.list(actor, studio, limit=sc["limit"], cursor=cursor)  # type: ignore[arg-type]
            assert len(page.data) <= sc["limit"]  # type: ignore[operator]
            assert all(s.studio_id == studio for s in page.data)
            seen.extend(s.id for s in page.data)
            for what, n, to_other in ops.pop(0) if ops else []:
                if what == "insert":
                    salt += 1
                    src = _source(acct.id, other if to_other else studio, n, salt)
                    await storage.apply([Insert(src)])
                    if not to_other:
                        live[src.id] = src
                elif live:
                    victim = sorted(live)[n % len(live)]
                    await storage.apply([Delete(Source, acct.id, victim)])
                    del live[victim]
                    stable.discard(victim)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        else:
            raise AssertionError("the walk did not end")
        assert seen == sorted(seen), "pages are in ascending id order"
        assert len(seen) == len(set(seen)), "no item is repeated"
        missing = stable - set(seen)
        assert not missing, f"items that existed for the whole walk were skipped: {missing}"
    finally:
        await storage.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenario)
def test_keyset_walk_never_skips_or_repeats(kind: str, sc: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(asyncio.wait_for(_walk(kind, Path(tmp), sc), timeout=60))


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_cursor_from_another_list_is_refused_by_the_services(kind: str, tmp_path: Path) -> None:
    async def run() -> None:
        storage = make_storage(kind, tmp_path)
        await storage.open()
        try:
            svc = make_services(storage)
            actor = Principal.operator((await svc.accounts.create("x")).id)
            a = await svc.studios.create(actor, name="A")
            b = await svc.studios.create(actor, name="B")
            for i in range(3):
                await svc.sources.create(actor, a.id, name=f"a{i}", kind="srt")
                await svc.sources.create(actor, b.id, name=f"b{i}", kind="rtmp")
            studios_cursor = (await svc.studios.list(actor, limit=1)).next_cursor
            sources_a = (await svc.sources.list(actor, a.id, limit=1)).next_cursor
            assert studios_cursor and sources_a
            for bad_call in (
                svc.sources.list(actor, a.id, cursor=studios_cursor),  # another resource
                svc.sources.list(actor, b.id, cursor=sources_a),  # same resource, another studio
                svc.studios.list(actor, cursor=sources_a[:-2]),  # truncated
                svc.studios.list(actor, cursor="not a cursor"),
            ):
                with pytest.raises(InvalidRequest) as err:
                    await bad_call
                assert err.value.code == "invalid_request"
            assert (await svc.studios.list(actor, cursor="")).data  # empty cursor starts over
            # the same cursor on the same list keeps working
            assert (await svc.sources.list(actor, a.id, cursor=sources_a)).data
        finally:
            await storage.close()

    asyncio.run(run())


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_walks_racing_real_writer_tasks(kind: str, tmp_path: Path) -> None:
    """Readers page while writer tasks create and delete through the services at the same time."""
    import random

    async def run() -> None:
        storage = make_storage(kind, tmp_path)
        await storage.open()
        try:
            svc = make_services(storage)
            actor = Principal.operator((await svc.accounts.create("race")).id)
            studio = (await svc.studios.create(actor, name="S")).id
            initial = [(await svc.sources.create(actor, studio, name=f"s{i}", kind="srt")).id for i in range(60)]
            deleted: set[str] = set()
            done = asyncio.Event()
            rng = random.Random(7)

            async def writer() -> None:
                pool = list(initial)
                for n in range(120):
                    if rng.random() < 0.5 and pool:
                        victim = pool.pop(rng.randrange(len(pool)))
                        deleted.add(victim)
                        await svc.sources.delete(actor, studio, victim)
                    else:
                        pool.append((await svc.sources.create(actor, studio, name=f"n{n}", kind="rtmp")).id)
                    await asyncio.sleep(0)
                done.set()

            async def reader(limit: int) -> list[list[str]]:
                walks = []
                while not done.is_set():
                    seen: list[str] = []
                    cursor = None
                    while True:
                        page = await svc.sources.list(actor, studio, limit=limit, cursor=cursor)
                        seen += [s.id for s in page.data]
                        await asyncio.sleep(0)
                        if not page.next_cursor:
                            break
                        cursor = page.next_cursor
                    walks.append(seen)
                return walks

            results = await asyncio.gather(writer(), reader(3), reader(7))
            walks = results[1] + results[2]
            assert walks
            for seen in walks:
                assert seen == sorted(seen) and len(seen) == len(set(seen))
                stable = set(initial) - deleted  # existed for every walk
                assert stable <= set(seen)
        finally:
            await storage.close()

    asyncio.run(asyncio.wait_for(run(), timeout=120))
