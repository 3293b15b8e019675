"""WHIP/WHEP sessions cannot hoard slots: unconnected ones are ended, and each token and account has a cap."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcconfiguration import RTCConfiguration

from tests.ingest.whip_support import Plane, wait_for, whip_plane
from trax.ingest.media import RTP_VIDEO_TIME_BASE, Track

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@asynccontextmanager
async def dangling_offer(direction: str = "recvonly") -> AsyncIterator[str]:
    """A WHEP offer whose only ICE candidate is a UDP socket that never answers: the session never connects.

    (aiortc's own client would answer the server's checks with errors, so ICE would fail fast; a silent
    peer keeps the server checking for ~30 s, which is what a slot-hoarding caller does.)
    """
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    candidate = f"a=candidate:1 1 udp 2130706431 127.0.0.1 {hole.getsockname()[1]} typ host"
    lines: list[str] = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:") or line == "a=end-of-candidates":
            continue
        lines.append(line)
        if line.startswith("a=ice-pwd:"):
            lines += [candidate, "a=end-of-candidates"]
    try:
        yield "\r\n".join(lines)
    finally:
        hole.close()


@asynccontextmanager
async def live_path(plane: Plane) -> AsyncIterator[str]:
    """A source with a publisher on the hub (no WebRTC publisher needed for WHEP admission)."""
    src = await plane.source()
    publisher = await plane.rt.hub.open_publisher(src.path, "test", [Track(0, "video", "h264", RTP_VIDEO_TIME_BASE)])
    try:
        yield src.path
    finally:
        await publisher.close(None)


async def post(http: httpx.AsyncClient, plane: Plane, path: str, offer: str, token: str) -> httpx.Response:
    return await http.post(
        plane.url(path, "whep"),
        content=offer,
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
    )


def error_code(resp: httpx.Response) -> Any:
    return resp.json()["error"]["code"]


async def test_unconnected_whep_sessions_are_ended_and_a_new_viewer_gets_in(tmp_path: Path) -> None:
    ingest = {"max_readers_per_path": 3, "idle_timeout_seconds": 60}
    async with (
        whip_plane(tmp_path, connect_timeout_seconds=1.5, ingest=ingest) as plane,
        live_path(plane) as path,
        dangling_offer() as offer,
        httpx.AsyncClient(timeout=30) as http,
    ):
        token = await plane.token(path, "read")
        for _ in range(3):
            assert (await post(http, plane, path, offer, token)).status_code == 201
        full = await post(http, plane, path, offer, await plane.token(path, "read"))
        assert full.status_code == 409 and error_code(full) == "conflict"  # the path's reader cap, as before
        # none of them connects: each is ended at the deadline, and its reader slot is free again
        await wait_for(lambda: not plane.transport.plane.sessions, within=8)
        assert plane.rt.hub.publisher(path).readers == 0
        again = await post(http, plane, path, offer, await plane.token(path, "read"))
        assert again.status_code == 201


async def test_one_token_has_a_session_cap(tmp_path: Path) -> None:
    async with (
        whip_plane(tmp_path, max_sessions_per_credential=2) as plane,
        live_path(plane) as path,
        dangling_offer() as offer,
        httpx.AsyncClient(timeout=30) as http,
    ):
        token = await plane.token(path, "read")
        for _ in range(2):
            assert (await post(http, plane, path, offer, token)).status_code == 201
        refused = await post(http, plane, path, offer, token)
        assert refused.status_code == 429
        body = refused.json()["error"]
        assert body["code"] == "rate_limited" and "credential" in body["message"]
        assert body["requestId"] == refused.headers["x-request-id"]
        assert int(refused.headers["retry-after"]) >= 1
        assert token not in refused.text
        # another token is not affected, and ending a session frees its token's slot
        assert (await post(http, plane, path, offer, await plane.token(path, "read"))).status_code == 201
        mine = next(s for s in plane.transport.plane.sessions.values() if s.owns(token))
        await plane.transport.plane.end(mine)
        assert (await post(http, plane, path, offer, token)).status_code == 201
        assert len(plane.transport.plane.sessions) == 3


async def test_one_account_has_a_session_cap(tmp_path: Path) -> None:
    async with (
        whip_plane(tmp_path, max_sessions_per_credential=10, max_sessions_per_account=3) as plane,
        live_path(plane) as path,
        dangling_offer() as offer,
        httpx.AsyncClient(timeout=30) as http,
    ):
        for _ in range(3):  # a fresh token each time: the account's cap, not the token's, applies
            assert (await post(http, plane, path, offer, await plane.token(path, "read"))).status_code == 201
        refused = await post(http, plane, path, offer, await plane.token(path, "read"))
        assert refused.status_code == 429 and error_code(refused) == "rate_limited"
        assert "account" in refused.json()["error"]["message"]
        # another account's viewers are not affected
        from trax.services import Principal

        other = Principal.operator((await plane.rt.services.accounts.create("other")).id)
        studio = await plane.rt.services.studios.create(other, name="s2")
        src = await plane.rt.services.sources.create(other, studio.id, name="cam", kind="whip")
        pub = await plane.rt.hub.open_publisher(src.path, "test", [Track(0, "video", "h264", RTP_VIDEO_TIME_BASE)])
        try:
            ok = await post(http, plane, src.path, offer, await plane.token(src.path, "read"))
            assert ok.status_code == 201
        finally:
            await pub.close(None)


async def test_a_whip_publisher_that_never_connects_frees_the_path(tmp_path: Path) -> None:
    async with (
        # takeover off: the second publisher is refused while the first holds the path
        whip_plane(tmp_path, ingest={"publisher_takeover": False}, connect_timeout_seconds=1.5) as plane,
        dangling_offer("sendonly") as offer,
        httpx.AsyncClient(timeout=30) as http,
    ):
        src = await plane.source()

        async def publish() -> httpx.Response:
            token = await plane.token(src.path, "publish")
            return await http.post(
                plane.url(src.path, "whip"),
                content=offer,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
            )

        assert (await publish()).status_code == 201
        assert (await publish()).status_code == 409  # the path has its publisher
        await wait_for(lambda: plane.rt.hub.publisher(src.path) is None, within=8)
        assert not plane.transport.plane.sessions
        assert await plane.status(src) == "error"
        assert (await publish()).status_code == 201  # the path is free again
