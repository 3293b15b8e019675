"""Services losing a parent/child race answer 404 (create) or 409 (delete), and write nothing.

Another writer is made to commit exactly between a use case's read and its
``apply``: the storage below runs it first thing in the next ``apply``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.unit.helpers import make_services, make_storage
from trax.domain.base import utcnow
from trax.domain.chat import ChatDirection, ChatMessage
from trax.domain.destinations import Destination
from trax.domain.errors import Conflict, NotFound
from trax.domain.ids import IdGenerator
from trax.domain.sources import Source
from trax.domain.studios import Studio
from trax.interfaces import Delete, Insert, Storage, Write
from trax.services import Principal, Services
from trax.services.studios import DELETE_ATTEMPTS

pytestmark = pytest.mark.anyio


class Interloper:
    """Delegates to a real storage; ``before_next_apply`` runs once, just ahead of the next write."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.before_next_apply: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def apply(self, writes: Sequence[Write]) -> None:
        step, self.before_next_apply = self.before_next_apply, None
        if step is not None:
            await step()
        await self.inner.apply(writes)


@pytest.fixture(params=["memory", "sqlite"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    inner = make_storage(request.param, tmp_path)
    await inner.open()
    store = Interloper(inner)
    svc = make_services(store)  # type: ignore[arg-type]
    actor = Principal.operator((await svc.accounts.create("racer")).id)
    yield store, svc, actor
    await inner.close()


def _message(actor: Principal, studio_id: str) -> ChatMessage:
    now = utcnow()
    return ChatMessage(
        id=IdGenerator().new("msg"),
        account_id=actor.account_id,
        created_at=now,
        updated_at=now,
        studio_id=studio_id,
        text="sneaked in",
        direction=ChatDirection.INBOUND,
        platform="loopback",
        author_name="x",
        sent_at=now,
    )


CREATES: dict[str, Callable[[Services, Principal, str], Awaitable[Any]]] = {
    "source": lambda s, a, sid: s.sources.create(a, sid, name="cam", kind="srt"),
    "destination": lambda s, a, sid: s.destinations.create(
        a, sid, {"name": "out", "platform": "custom_rtmp", "rtmpUrl": "rtmp://127.0.0.1/x", "streamKey": "k"}
    ),
    "chat": lambda s, a, sid: s.chat.send(a, sid, text="hello"),
}


@pytest.mark.parametrize("what", sorted(CREATES))
async def test_a_create_whose_studio_is_deleted_meanwhile_is_not_found(world: Any, what: str) -> None:
    store, svc, actor = world
    studio = await svc.studios.create(actor, name="doomed")

    async def delete_the_studio() -> None:
        await store.inner.apply([Delete(Studio, actor.account_id, studio.id)])

    store.before_next_apply = delete_the_studio
    with pytest.raises(NotFound) as err:
        await CREATES[what](svc, actor, studio.id)
    assert err.value.status == 404 and err.value.code == "not_found"
    assert err.value.message == "No such studio."
    for kind in (Source, Destination, ChatMessage):
        assert await store.inner.list(kind, actor.account_id) == []


async def test_a_studio_delete_that_misses_a_new_child_lists_again_and_deletes_both(world: Any) -> None:
    store, svc, actor = world
    studio = await svc.studios.create(actor, name="busy")
    src = await svc.sources.create(actor, studio.id, name="cam", kind="srt")
    late = _message(actor, studio.id)
    batches: list[int] = []
    inner_apply = store.inner.apply

    async def counting_apply(writes: Sequence[Write]) -> None:
        batches.append(len(writes))
        await inner_apply(writes)

    async def add_a_child() -> None:
        await store.inner.apply([Insert(late)])

    store.before_next_apply = add_a_child
    store.inner.apply = counting_apply
    await svc.studios.delete(actor, studio.id)
    # the first batch (source + studio CAS + studio) was refused; the second also took the message
    assert batches == [1, 3, 4]
    assert await store.inner.get(Studio, actor.account_id, studio.id) is None
    assert await store.inner.get(ChatMessage, actor.account_id, late.id) is None
    assert await store.inner.get(Source, actor.account_id, src.id) is None


async def test_a_studio_delete_that_keeps_losing_gives_up_with_409_and_writes_nothing(world: Any) -> None:
    store, svc, actor = world
    studio = await svc.studios.create(actor, name="busier")
    src = await svc.sources.create(actor, studio.id, name="cam", kind="srt")
    added: list[ChatMessage] = []

    async def add_a_child() -> None:
        added.append(_message(actor, studio.id))
        await store.inner.apply([Insert(added[-1])])
        store.before_next_apply = add_a_child  # again before every attempt

    store.before_next_apply = add_a_child
    with pytest.raises(Conflict) as err:
        await svc.studios.delete(actor, studio.id)
    assert err.value.status == 409 and err.value.code == "conflict"
    assert len(added) == DELETE_ATTEMPTS
    # nothing of the refused batches was written: everything listed or added is still there
    assert await store.inner.get(Source, actor.account_id, src.id) == src
    assert await store.inner.get(Studio, actor.account_id, studio.id) is not None
    assert len(await store.inner.list(ChatMessage, actor.account_id, parent_id=studio.id)) == DELETE_ATTEMPTS
    store.before_next_apply = None
    await svc.studios.delete(actor, studio.id)
    assert await store.inner.list(ChatMessage, actor.account_id, parent_id=studio.id) == []
