"""Hostile offers: whatever the body, the WHIP endpoint answers 4xx (or 201) and never 500, and keeps serving."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.whip_support import Plane, whip_plane

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

LINES = st.sampled_from(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "m=video x y z",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=mid:1",
        "a=sendonly",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:96 H264/90000",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:abc",
        "a=fmtp:96 packetization-mode=1;profile-level-id=42e01f",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:0123456789012345678901",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=fingerprint:md5 zz",
        "a=setup:actpass",
        "a=setup:bogus",
        "a=candidate:1 1 UDP 2130706431 127.0.0.1 9 typ host",
        "a=candidate:garbage",
        "a=ssrc:1 cname:x",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
    ]
)
OFFERS = st.one_of(
    st.lists(LINES, min_size=1, max_size=30).map(lambda ls: "\r\n".join(["v=0", *ls]) + "\r\n"),
    st.text(max_size=300),
)


async def test_no_offer_makes_the_server_fail(tmp_path: Path) -> None:
    async with whip_plane(tmp_path) as plane, httpx.AsyncClient(timeout=30) as http:
        src = await plane.source()
        token = await plane.token(src.path, "publish")
        seen: set[int] = set()

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(offer=OFFERS)
        def check(offer: str) -> None:
            # hypothesis draws the offers; they are posted below, on the running loop
            examples.append(offer)

        examples: list[str] = []
        check()
        for offer in examples:
            resp = await http.post(
                plane.url(src.path, "whip"),
                content=offer.encode("utf-8", "surrogatepass"),
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
            )
            seen.add(resp.status_code)
            assert resp.status_code in (201, 400, 409), (resp.status_code, resp.text, offer)
            assert resp.json()["error"]["requestId"] if resp.status_code != 201 else True
            if resp.status_code == 201:
                await http.delete(
                    httpx.URL(plane.base).join(resp.headers["location"]),
                    headers={"Authorization": f"Bearer {token}"},
                )
        assert 400 in seen
        await _still_serves(plane, http, token, src.path)


async def _still_serves(plane: Plane, http: httpx.AsyncClient, token: str, path: str) -> None:
    resp = await http.options(plane.url(path, "whip"))
    assert resp.status_code == 204
    assert not [s for s in plane.transport.plane.sessions.values() if not s.closed and s.kind == "whep"]
