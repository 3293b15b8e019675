"""RFC 9725 details a generic client relies on: the session resource works with the credential form it was made with,
and a page on another origin may read every header WHIP/WHEP defines (Access-Control-Expose-Headers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcconfiguration import RTCConfiguration

from tests.ingest.whip_support import Plane, wait_for, whip_plane
from trax.ingest.whip.client import PatternTrack, WhipPublisher

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ORIGIN = "http://studio.example.test"
EXPOSED = ("link", "location", "accept-patch", "etag")


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[Plane]:
    async with whip_plane(tmp_path) as p:
        yield p


async def _offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(PatternTrack(320, 240, 30), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_delete_of_a_session_created_with_access_token_query(plane: Plane) -> None:
    """A plain RFC 9725 client: POST to the URL it was given (token in the query), then DELETE the Location it got,
    resolved against that URL (RFC 3986), with nothing added: the session ends, and only that session."""
    src = await plane.source()
    token = await plane.token(src.path, "publish")
    url = plane.url(src.path, "whip") + f"?access_token={token}"
    pc, sdp = await _offer()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.post(url, content=sdp, headers={"Content-Type": "application/sdp"})
            assert resp.status_code == 201, resp.text
            location = httpx.URL(url).join(resp.headers["location"])
            assert plane.rt.hub.publisher(src.path) is not None
            # the resource URL is no key to other sessions: a made-up session id with it is still refused
            forged = location.copy_with(path=location.path.rsplit("/", 1)[0] + "/not-a-session")
            assert (await http.delete(forged)).status_code == 404
            gone = await http.delete(location)
            assert gone.status_code == 200, gone.text
            await wait_for(lambda: plane.rt.hub.publisher(src.path) is None, within=10)
            assert (await http.delete(location)).status_code == 404
    finally:
        await pc.close()


async def test_bearer_sessions_keep_a_plain_location(plane: Plane) -> None:
    """A client that sent Authorization keeps using it; its Location needs nothing more."""
    src = await plane.source()
    token = await plane.token(src.path, "publish")
    async with WhipPublisher(plane.url(src.path, "whip"), token, PatternTrack(320, 240, 30)) as pub:
        assert pub.response is not None and "?" not in pub.response.headers["location"]
        assert pub.location is not None
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.delete(pub.location)).status_code == 401  # no credential at all
            assert (await http.delete(pub.location, headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_cors_exposes_the_whip_headers_on_options_and_post(plane: Plane) -> None:
    src = await plane.source()
    token = await plane.token(src.path, "publish")
    pc, sdp = await _offer()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            options = await http.options(plane.url(src.path, "whip"), headers={"Origin": ORIGIN})
            post = await http.post(
                plane.url(src.path, "whip"),
                content=sdp,
                headers={"Origin": ORIGIN, "Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
            )
            assert post.status_code == 201, post.text
            for resp in (options, post):
                exposed = {h.strip().lower() for h in resp.headers["access-control-expose-headers"].split(",")}
                assert set(EXPOSED) <= exposed, exposed
            await http.delete(httpx.URL(plane.url(src.path, "whip")).join(post.headers["location"]),
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    finally:
        await pc.close()
