"""The use cases over a started in-memory runtime: tenancy, state machines, cascades, secrets, events."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import memory_settings
from trax.domain import events
from trax.domain.chat import ChatMessage
from trax.domain.destinations import Destination, DestinationStatus
from trax.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge, Unauthorized
from trax.domain.events import Event
from trax.domain.sources import Source, SourceStatus
from trax.domain.studios import StudioStatus, check_transition
from trax.plugin_api import hookimpl
from trax.plugin_manager import make_plugin_manager
from trax.runtime import Runtime
from trax.services import Principal
from trax.services.connections import UNLINKED_REASON
from trax.services.deps import ServiceDeps

pytestmark = pytest.mark.anyio


@pytest.fixture
def seen(runtime: Runtime) -> list[Event]:
    got: list[Event] = []

    async def collect(event: Event) -> None:
        got.append(event)

    runtime.bus.subscribe(collect)
    return got


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def _world(rt: Runtime, op: Principal) -> dict[str, Any]:
    """One of everything in ``op``'s account."""
    s = rt.services
    studio = await s.studios.create(op, name="Main", description="d")
    src = await s.sources.create(op, studio.id, name="cam", kind="srt")
    conn = await s.connections.link(op.account_id, platform="loopback", display_name="me", external_account_id="ext")
    dst = await s.destinations.create(op, studio.id, {"name": "lb", "platform": "loopback", "connectionId": conn.id})
    msg = await s.chat.send(op, studio.id, text="hi")
    _upload, asset, _ = await s.media.initiate_upload(op, name="a.mp4", content_type="video/mp4", size_bytes=3)
    key, _secret = await s.keys.create(op, name="k", scopes=["studios:read"])
    return {"studio": studio, "src": src, "conn": conn, "dst": dst, "msg": msg, "asset": asset, "key": key}


# --- tenancy -----------------------------------------------------------------------------


async def test_another_accounts_objects_are_not_found_everywhere(runtime: Runtime, operator: Principal) -> None:
    s = runtime.services
    w = await _world(runtime, operator)
    intruder = Principal.operator((await s.accounts.create("intruder")).id)
    sid = w["studio"].id
    attempts = [
        s.studios.get(intruder, sid),
        s.studios.update(intruder, sid, {"name": "x"}),
        s.studios.delete(intruder, sid),
        s.studios.stream_status(intruder, sid),
        s.studios.go_live(intruder, sid),
        s.studios.go_offline(intruder, sid),
        s.sources.list(intruder, sid),
        s.sources.create(intruder, sid, name="x", kind="srt"),
        s.sources.get(intruder, sid, w["src"].id),
        s.sources.update(intruder, sid, w["src"].id, {"name": "x"}),
        s.sources.delete(intruder, sid, w["src"].id),
        s.sources.rotate_stream_key(intruder, sid, w["src"].id),
        s.destinations.list(intruder, sid),
        s.destinations.get(intruder, sid, w["dst"].id),
        s.destinations.update(intruder, sid, w["dst"].id, {"name": "x"}),
        s.destinations.delete(intruder, sid, w["dst"].id),
        s.chat.list(intruder, sid),
        s.chat.send(intruder, sid, text="x"),
        s.connections.get(intruder, w["conn"].id),
        s.connections.unlink(intruder, w["conn"].id),
        s.media.get(intruder, w["asset"].id),
        s.media.delete(intruder, w["asset"].id),
        s.keys.get(intruder, w["key"].id),
        s.keys.revoke(intruder, w["key"].id),
        s.keys.rotate(intruder, w["key"].id),
    ]
    for call in attempts:
        with pytest.raises(NotFound) as err:
            await call
        assert err.value.status == 404
    # and lists of the intruder's own account are empty
    assert (await s.studios.list(intruder)).data == []
    assert (await s.connections.list(intruder)).data == []
    assert (await s.media.list(intruder)).data == []
    assert (await s.keys.list(intruder)).data == []
    # a child fetched through another (own) studio is not found either
    other = await s.studios.create(operator, name="Other")
    with pytest.raises(NotFound):
        await s.sources.get(operator, other.id, w["src"].id)
    with pytest.raises(NotFound):
        await s.destinations.get(operator, other.id, w["dst"].id)
    # nothing changed for the owner
    assert (await s.studios.get(operator, sid)).name == "Main"
    assert (await s.sources.get(operator, sid, w["src"].id)).name == "cam"


async def test_missing_scope_is_forbidden_and_names_it(runtime: Runtime, operator: Principal) -> None:
    reader = Principal(account_id=operator.account_id, scopes=frozenset({"studios:read"}))
    with pytest.raises(Forbidden) as err:
        await runtime.services.studios.create(reader, name="x")
    assert err.value.required_scope == "studios:write"
    writer = Principal(account_id=operator.account_id, scopes=frozenset({"studios:write"}))
    studio = await runtime.services.studios.create(writer, name="x")
    with pytest.raises(Forbidden) as err:  # write does not imply read
        await runtime.services.studios.get(writer, studio.id)
    assert err.value.required_scope == "studios:read"


# --- studios: state machine, go-live idempotency, delete ----------------------------------


def test_state_machine_allows_only_the_documented_steps() -> None:
    allowed = {
        (StudioStatus.OFFLINE, StudioStatus.STARTING),
        (StudioStatus.STARTING, StudioStatus.LIVE),
        (StudioStatus.STARTING, StudioStatus.STOPPING),
        (StudioStatus.LIVE, StudioStatus.STOPPING),
        (StudioStatus.STOPPING, StudioStatus.OFFLINE),
    }
    for a in StudioStatus:
        for b in StudioStatus:
            if (a, b) in allowed:
                check_transition(a, b)
            else:
                with pytest.raises(Conflict):
                    check_transition(a, b)


async def test_go_live_and_offline_are_idempotent_and_emit_once(
    runtime: Runtime, operator: Principal, seen: list[Event]
) -> None:
    s = runtime.services.studios
    studio = await s.create(operator, name="Show")
    status, changed = await s.go_live(operator, studio.id)
    assert changed and status.status is StudioStatus.LIVE and status.live_since is not None
    again, changed_again = await s.go_live(operator, studio.id)
    assert not changed_again and again.status is StudioStatus.LIVE and again.live_since == status.live_since
    assert [e.type for e in seen] == [events.STREAM_LIVE]
    assert seen[0].data["studio_id"] == studio.id and seen[0].account_id == operator.account_id

    off, changed = await s.go_offline(operator, studio.id)
    assert changed and off.status is StudioStatus.OFFLINE and off.live_since is None
    off_again, changed_again = await s.go_offline(operator, studio.id)
    assert not changed_again and off_again.status is StudioStatus.OFFLINE
    assert [e.type for e in seen] == [events.STREAM_LIVE, events.STREAM_OFFLINE]


async def test_delete_while_live_is_a_conflict_and_changes_nothing(runtime: Runtime, operator: Principal) -> None:
    s = runtime.services
    studio = await s.studios.create(operator, name="Show")
    src = await s.sources.create(operator, studio.id, name="cam", kind="rtmp")
    await s.studios.go_live(operator, studio.id)
    with pytest.raises(Conflict) as err:
        await s.studios.delete(operator, studio.id)
    assert err.value.status == 409
    assert (await s.studios.get(operator, studio.id)).status is StudioStatus.LIVE
    assert (await s.sources.get(operator, studio.id, src.id)).id == src.id
    await s.studios.go_offline(operator, studio.id)
    await s.studios.delete(operator, studio.id)
    with pytest.raises(NotFound):
        await s.studios.get(operator, studio.id)


async def test_delete_cascades_to_sources_destinations_and_chat(runtime: Runtime, operator: Principal) -> None:
    s = runtime.services
    w = await _world(runtime, operator)
    keep = await s.studios.create(operator, name="Keep")
    kept_src = await s.sources.create(operator, keep.id, name="stay", kind="whip")
    await s.studios.delete(operator, w["studio"].id)
    acct = operator.account_id
    st = runtime.storage
    for kind, obj in ((Source, w["src"]), (Destination, w["dst"]), (ChatMessage, w["msg"])):
        assert await st.get(kind, acct, obj.id) is None, kind.KIND
        assert await st.list(kind, acct, parent_id=w["studio"].id) == []
    assert await s.sources.by_path(w["src"].path) is None  # its unique stream path is free again
    assert (await s.sources.get(operator, keep.id, kept_src.id)).id == kept_src.id
    # the connection and media are account-level and stay
    assert (await s.connections.get(operator, w["conn"].id)).id == w["conn"].id
    assert (await s.media.get(operator, w["asset"].id)).id == w["asset"].id


async def test_studio_update_is_partial_and_validated(runtime: Runtime, operator: Principal) -> None:
    s = runtime.services.studios
    studio = await s.create(operator, name="A", description="first")
    renamed = await s.update(operator, studio.id, {"name": "B"})
    assert renamed.name == "B" and renamed.description == "first"
    cleared = await s.update(operator, studio.id, {"description": None})
    assert cleared.description is None and cleared.name == "B"
    for bad in ({"name": ""}, {"name": "x" * 101}, {"name": 5}, {"status": "live"}, {"id": "studio_x"}):
        with pytest.raises(InvalidRequest):
            await s.update(operator, studio.id, bad)


# --- sources -------------------------------------------------------------------------------


async def test_source_paths_and_status_events(runtime: Runtime, operator: Principal, seen: list[Event]) -> None:
    s = runtime.services
    studio = await s.studios.create(operator, name="S")
    src = await s.sources.create(operator, studio.id, name="cam", kind="srt")
    assert src.path.startswith("inputs/srt-") and src.protocols == ("srt",)
    assert (await s.sources.by_path(src.path)).id == src.id  # type: ignore[union-attr]
    with pytest.raises(InvalidRequest):
        await s.sources.create(operator, studio.id, name="x", kind="hls")
    with pytest.raises(InvalidRequest):
        await s.sources.create(operator, studio.id, name="x", kind="media")  # needs an asset

    updated = await s.sources.set_status(src.path, SourceStatus.LIVE)
    assert updated is not None and updated.status is SourceStatus.LIVE
    await s.sources.set_status(src.path, SourceStatus.LIVE)  # no change: no event
    await s.sources.set_status(src.path, SourceStatus.IDLE, "publisher left")
    assert await s.sources.set_status("inputs/srt-00000000-0000-0000-0000-000000000000", SourceStatus.LIVE) is None
    changes = [e for e in seen if e.type == events.SOURCE_STATUS_CHANGED]
    assert [(e.data["status"], e.data["previous"]) for e in changes] == [("live", "idle"), ("idle", "live")]
    assert changes[1].data["reason"] == "publisher left" and changes[1].data["source_id"] == src.id

    rotated, key = await s.sources.rotate_stream_key(operator, studio.id, src.id)
    assert key not in repr(rotated) and rotated.stream_key_hash and key not in rotated.stream_key_hash
    assert (await s.sources.by_stream_key(key)).id == src.id  # type: ignore[union-attr]
    _, key2 = await s.sources.rotate_stream_key(operator, studio.id, src.id)
    assert await s.sources.by_stream_key(key) is None  # the old key stops working
    assert (await s.sources.by_stream_key(key2)).id == src.id  # type: ignore[union-attr]


# --- destinations ------------------------------------------------------------------------


async def test_destination_stream_key_is_write_only_and_url_userinfo_stripped(
    runtime: Runtime, operator: Principal
) -> None:
    s = runtime.services
    studio = await s.studios.create(operator, name="S")
    dst = await s.destinations.create(
        operator,
        studio.id,
        {
            "name": "custom",
            "platform": "custom_rtmp",
            "rtmpUrl": "rtmp://alice:s3cret@live.example.test:1935/app",
            "streamKey": "abcd-efgh-SECRETKEY-7890",
        },
    )
    assert dst.public_rtmp_url == "rtmp://live.example.test:1935/app"
    assert dst.stream_key_hint == "7890"
    assert "SECRETKEY" not in repr(dst) and "s3cret" not in repr(dst) and "s3cret" not in (dst.public_rtmp_url or "")
    # updates keep the key unless replaced; clearing it on custom_rtmp is refused
    renamed = await s.destinations.update(operator, studio.id, dst.id, {"name": "renamed"})
    assert renamed.stream_key_hint == "7890"
    with pytest.raises(InvalidRequest):
        await s.destinations.update(operator, studio.id, dst.id, {"streamKey": None})
    for bad in (
        {"name": "x", "platform": "custom_rtmp", "rtmpUrl": "http://x/app", "streamKey": "k"},
        {"name": "x", "platform": "custom_rtmp", "rtmpUrl": "rtmp://x/app"},
        {"name": "x", "platform": "youtube", "streamKey": "k"},
        {"name": "x", "platform": "myspace"},
        {"name": "x", "platform": "youtube", "bogus": 1},
        {"name": "x", "platform": "youtube", "enabled": "yes"},
    ):
        with pytest.raises(InvalidRequest):
            await s.destinations.create(operator, studio.id, bad)


async def test_unlinking_a_connection_turns_its_destinations_to_error(
    runtime: Runtime, operator: Principal, seen: list[Event]
) -> None:
    s = runtime.services
    studio = await s.studios.create(operator, name="S")
    conn = await s.connections.link(
        operator.account_id, platform="loopback", display_name="me", external_account_id="e"
    )
    used = await s.destinations.create(
        operator, studio.id, {"name": "a", "platform": "loopback", "connectionId": conn.id}
    )
    unrelated = await s.destinations.create(operator, studio.id, {"name": "b", "platform": "youtube"})
    await s.connections.unlink(operator, conn.id)
    with pytest.raises(NotFound):
        await s.connections.get(operator, conn.id)
    broken = await s.destinations.get(operator, studio.id, used.id)
    assert broken.status is DestinationStatus.ERROR and broken.error == UNLINKED_REASON
    assert broken.connection_id is None
    assert (await s.destinations.get(operator, studio.id, unrelated.id)).status is DestinationStatus.IDLE
    changed = [e for e in seen if e.type == events.DESTINATION_STATUS_CHANGED]
    assert [e.data["destination_id"] for e in changed] == [used.id]
    assert changed[0].data["status"] == "error"


async def test_destination_status_changes_emit_events(runtime: Runtime, operator: Principal, seen: list[Event]) -> None:
    s = runtime.services
    studio = await s.studios.create(operator, name="S")
    dst = await s.destinations.create(operator, studio.id, {"name": "a", "platform": "youtube"})
    await s.destinations.set_status(operator.account_id, dst.id, DestinationStatus.CONNECTING)
    await s.destinations.set_status(operator.account_id, dst.id, DestinationStatus.CONNECTING)
    await s.destinations.set_status(operator.account_id, dst.id, DestinationStatus.LIVE)
    assert [e.data["status"] for e in seen if e.type == events.DESTINATION_STATUS_CHANGED] == ["connecting", "live"]
    status = await s.studios.stream_status(operator, studio.id)
    assert [(d.id, d.status) for d in status.destinations] == [(dst.id, DestinationStatus.LIVE)]


# --- chat ----------------------------------------------------------------------------------


async def test_chat_send_fans_out_to_linked_platforms(runtime: Runtime, operator: Principal, seen: list[Event]) -> None:
    s = runtime.services
    loopback = runtime.platforms["loopback"]
    studio = await s.studios.create(operator, name="S")
    conn = await s.connections.link(
        operator.account_id, platform="loopback", display_name="me", external_account_id="e"
    )
    off_conn = await s.connections.link(
        operator.account_id, platform="loopback", display_name="off", external_account_id="f"
    )
    await s.destinations.create(operator, studio.id, {"name": "a", "platform": "loopback", "connectionId": conn.id})
    await s.destinations.create(operator, studio.id, {"name": "dup", "platform": "loopback", "connectionId": conn.id})
    await s.destinations.create(
        operator, studio.id, {"name": "off", "platform": "loopback", "connectionId": off_conn.id, "enabled": False}
    )
    msg = await s.chat.send(operator, studio.id, text="hello world")
    assert msg.direction == "outbound"
    assert loopback.sent == [(conn.id, msg.id, "hello world")]  # type: ignore[attr-defined]
    assert [e.data["message_id"] for e in seen if e.type == events.CHAT_MESSAGE] == [msg.id]
    inbound = await s.chat.receive(conn, studio.id, text="hi back", author_name="viewer")
    page = await s.chat.list(operator, studio.id)
    assert [m.id for m in page.data] == [msg.id, inbound.id]
    assert [m.id for m in (await s.chat.list(operator, studio.id, after=msg.id)).data] == [inbound.id]
    for bad in ("", "   ", "x" * 2001):
        with pytest.raises(InvalidRequest):
            await s.chat.send(operator, studio.id, text=bad)


# --- media uploads ---------------------------------------------------------------------------


async def test_upload_checks_size_and_sha256(runtime: Runtime, operator: Principal) -> None:
    m = runtime.services.media
    body = b"hello media"
    digest = hashlib.sha256(body).hexdigest()
    upload, asset, token = await m.initiate_upload(
        operator, name="clip.mp4", content_type="video/mp4", size_bytes=len(body), sha256=digest
    )
    assert asset.status == "pending" and upload.max_bytes == len(body) and token not in repr(upload)
    with pytest.raises(Unauthorized):
        await m.receive_upload(upload.id, "wrong-token", _chunks(body))
    with pytest.raises(InvalidRequest):  # too short
        await m.receive_upload(upload.id, token, _chunks(body[:-1]))
    with pytest.raises(PayloadTooLarge):  # too long
        await m.receive_upload(upload.id, token, _chunks(body, b"!"))
    with pytest.raises(InvalidRequest):  # right size, wrong bytes
        await m.receive_upload(upload.id, token, _chunks(b"HELLO MEDIA"))
    assert (await m.get(operator, asset.id)).status == "pending"
    ready = await m.receive_upload(upload.id, token, _chunks(body[:5], body[5:]))
    assert ready.status == "ready" and ready.sha256 == digest and ready.size_bytes == len(body)
    assert await runtime.blobs.exists(ready.blob_key)  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        await m.receive_upload(upload.id, token, _chunks(body))
    await m.delete(operator, asset.id)
    assert not await runtime.blobs.exists(ready.blob_key)  # type: ignore[arg-type]


async def test_upload_initiation_is_validated(runtime: Runtime, operator: Principal) -> None:
    m = runtime.services.media
    cases: list[dict[str, Any]] = [
        {"content_type": "text/html"},
        {"size_bytes": 0},
        {"size_bytes": True},
        {"size_bytes": "3"},
        {"sha256": "ABC"},
        {"sha256": 123},
        {"name": ""},
    ]
    for case in cases:
        args: dict[str, Any] = {"name": "a", "content_type": "video/mp4", "size_bytes": 3, **case}
        with pytest.raises(InvalidRequest):
            await m.initiate_upload(operator, **args)
    with pytest.raises(InvalidRequest) as err:  # over the deployment's cap: a failed constraint, not a 413
        await m.initiate_upload(operator, name="a", content_type="video/mp4", size_bytes=10**15)
    assert err.value.param == "sizeBytes"


# --- keys ----------------------------------------------------------------------------------


async def test_key_lifecycle(runtime: Runtime, operator: Principal, monkeypatch: pytest.MonkeyPatch) -> None:
    k = runtime.services.keys
    key, secret = await k.create(operator, name="ci", scopes=["studios:write", "studios:read", "studios:read"])
    assert secret.startswith("sk_live_") and key.prefix == secret[:12]
    assert key.scopes == ("studios:read", "studios:write")
    assert secret not in repr(key) and key.key_hash not in repr(key)
    assert not hasattr(key, "secret")
    listed = (await k.list(operator)).data
    assert [x.id for x in listed] == [key.id]
    assert all(
        secret not in repr(x) and secret not in str(x.__dict__ if hasattr(x, "__dict__") else "") for x in listed
    )

    principal = await k.authenticate(secret)
    assert principal.account_id == operator.account_id and principal.key_id == key.id
    assert principal.scopes == frozenset({"studios:read", "studios:write"})
    for bad in ("", "sk_live_", "nope", secret + "x", secret[:-1]):
        with pytest.raises(Unauthorized):
            await k.authenticate(bad)
    assert await k.flush_usage() == 1
    assert (await k.get(operator, key.id)).last_used_at is not None

    for bad_scopes in ([], ["studios:admin"]):
        with pytest.raises(InvalidRequest):
            await k.create(operator, name="bad", scopes=bad_scopes)

    # rotate with a grace period: both work until it ends, then only the new one
    new, new_secret = await k.rotate(operator, key.id, grace_seconds=60)
    assert new.id != key.id and new_secret != secret and new.scopes == key.scopes
    assert (await k.authenticate(secret)).key_id == key.id
    assert (await k.authenticate(new_secret)).key_id == new.id
    later = runtime.deps.now() + timedelta(seconds=61)
    monkeypatch.setattr(ServiceDeps, "now", lambda self: later)
    with pytest.raises(Unauthorized):
        await k.authenticate(secret)
    assert (await k.authenticate(new_secret)).key_id == new.id
    monkeypatch.undo()

    # revoke takes effect on the next call; revoking twice is fine; a revoked key cannot rotate
    await k.revoke(operator, new.id)
    with pytest.raises(Unauthorized):
        await k.authenticate(new_secret)
    await k.revoke(operator, new.id)
    with pytest.raises(Conflict):
        await k.rotate(operator, new.id)


# --- a plugin's trax_event hook --------------------------------------------------------------


class EventSpy:
    def __init__(self) -> None:
        self.sync_seen: list[str] = []
        self.async_seen: list[str] = []

    @hookimpl
    def trax_event(self, event: Event, runtime: Runtime) -> None:
        self.sync_seen.append(event.type)


class AsyncEventSpy:
    def __init__(self, into: list[str]) -> None:
        self.into = into

    @hookimpl
    async def trax_event(self, event: Event, runtime: Runtime) -> None:
        self.into.append(event.type)


class BrokenEventPlugin:
    @hookimpl
    def trax_event(self, event: Event, runtime: Runtime) -> None:
        raise RuntimeError("a plugin bug must not reach the caller")


async def test_plugins_see_every_state_change_through_trax_event(tmp_path: Path) -> None:
    spy = EventSpy()
    aspy = AsyncEventSpy(spy.async_seen)
    # no broadcast: its egress would add destination events of its own (tested in tests/broadcast)
    settings = memory_settings(tmp_path, broadcast={"enabled": False})
    pm = make_plugin_manager(settings, extra_plugins=[spy, aspy, BrokenEventPlugin()])  # type: ignore[arg-type]
    async with Runtime(settings, pm) as rt:  # type: ignore[arg-type]
        s = rt.services
        op = Principal.operator((await s.accounts.create("a")).id)
        studio = await s.studios.create(op, name="S")
        src = await s.sources.create(op, studio.id, name="cam", kind="srt")
        dst = await s.destinations.create(op, studio.id, {"name": "d", "platform": "youtube"})
        await s.studios.go_live(op, studio.id)
        await s.sources.set_status(src.path, SourceStatus.LIVE)
        await s.destinations.set_status(op.account_id, dst.id, DestinationStatus.LIVE)
        await s.chat.send(op, studio.id, text="hi")
        await s.studios.go_offline(op, studio.id)
    expected = [
        events.STREAM_LIVE,
        events.SOURCE_STATUS_CHANGED,
        events.DESTINATION_STATUS_CHANGED,
        events.CHAT_MESSAGE,
        events.STREAM_OFFLINE,
    ]
    assert spy.sync_seen == expected
    assert spy.async_seen == expected


async def test_account_names_are_unique_and_lookup_works_by_id_or_name(runtime: Runtime) -> None:
    a = runtime.services.accounts
    acct = await a.create("acme-2")
    with pytest.raises(Conflict):
        await a.create("acme-2")
    assert (await a.get(acct.id)).name == "acme-2"
    assert (await a.get("acme-2")).id == acct.id
    with pytest.raises(NotFound):
        await a.get("nobody")
