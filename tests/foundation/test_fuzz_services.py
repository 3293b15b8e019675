"""Bad input to the use cases is a TraxError (a 4xx on the wire), never a TypeError or a crash."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.helpers import make_services
from trax.domain.errors import TraxError
from trax.plugins.memory_storage import MemoryStorage
from trax.services import Principal

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
dest_keys = st.sampled_from(["name", "platform", "connectionId", "enabled", "rtmpUrl", "streamKey", "other"])
plausible = st.one_of(
    json_values,
    st.sampled_from(["custom_rtmp", "youtube", "loopback", "rtmp://h/app", "rtmp://u:p@h:1/a", "k" * 600, ""]),
)
bodies = st.dictionaries(dest_keys, plausible, max_size=6)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(scenario: Any) -> None:
    async def go() -> None:
        svc = make_services(MemoryStorage())
        op = Principal.operator((await svc.accounts.create("fuzz")).id)
        studio = await svc.studios.create(op, name="S")
        await scenario(svc, op, studio.id)

    asyncio.run(asyncio.wait_for(go(), timeout=30))


async def _only_trax_errors(call: Any) -> None:
    try:
        await call
    except TraxError as exc:
        assert 400 <= exc.status < 500, exc


@FUZZ
@given(create=bodies, update=bodies)
def test_destination_bodies(create: dict[str, Any], update: dict[str, Any]) -> None:
    async def scenario(svc: Any, op: Principal, studio: str) -> None:
        await _only_trax_errors(svc.destinations.create(op, studio, create))
        ok = await svc.destinations.create(
            op, studio, {"name": "d", "platform": "custom_rtmp", "rtmpUrl": "rtmp://h/a", "streamKey": "k"}
        )
        await _only_trax_errors(svc.destinations.update(op, studio, ok.id, update))

    _run(scenario)


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(["name", "description", "status"]), json_values, max_size=3),
    kind=json_values | st.sampled_from(["srt", "rtmp", "whip", "media"]),
    name=json_values,
)
def test_studio_and_source_input(changes: dict[str, Any], kind: Any, name: Any) -> None:
    async def scenario(svc: Any, op: Principal, studio: str) -> None:
        await _only_trax_errors(svc.studios.update(op, studio, changes))
        await _only_trax_errors(svc.studios.create(op, name=name))
        await _only_trax_errors(svc.sources.create(op, studio, name=name, kind=kind))
        src = await svc.sources.create(op, studio, name="s", kind="srt")
        await _only_trax_errors(svc.sources.update(op, studio, src.id, {"name": name}))

    _run(scenario)


@FUZZ
@given(
    name=json_values,
    content_type=json_values | st.just("video/mp4"),
    size=json_values,
    sha=json_values,
    scopes=st.lists(json_values, max_size=3) | st.lists(st.sampled_from(["studios:read", "bogus"]), max_size=3),
    text=json_values,
    limit=json_values,
    cursor=json_values,
)
def test_media_keys_chat_and_paging_input(
    name: Any, content_type: Any, size: Any, sha: Any, scopes: Any, text: Any, limit: Any, cursor: Any
) -> None:
    async def scenario(svc: Any, op: Principal, studio: str) -> None:
        await _only_trax_errors(
            svc.media.initiate_upload(op, name=name, content_type=content_type, size_bytes=size, sha256=sha)
        )
        await _only_trax_errors(svc.keys.create(op, name=name, scopes=scopes))
        await _only_trax_errors(svc.chat.send(op, studio, text=text))
        await _only_trax_errors(svc.studios.list(op, limit=limit, cursor=cursor))
        await _only_trax_errors(svc.chat.list(op, studio, after=text))

    _run(scenario)
