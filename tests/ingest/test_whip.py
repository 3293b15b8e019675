"""WHIP and WHEP with real aiortc clients on loopback: media flows, refusals, status, the watchdog."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCConfiguration

from tests.ingest.whip_support import Plane, wait_for, whip_plane
from trax.domain.events import SOURCE_STATUS_CHANGED
from trax.ingest.whip.client import PatternTrack, WhepPlayer, WhipPublisher

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SMALL = {"width": 320, "height": 240, "fps": 30}


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[Plane]:
    async with whip_plane(tmp_path) as p:
        yield p


@pytest.mark.parametrize("codec", ["h264", "vp8"])
async def test_publish_and_play_without_reencoding(plane: Plane, codec: str) -> None:
    src = await plane.source()
    pub_token = await plane.token(src.path, "publish", audience="trax-talk")
    read_token = await plane.token(src.path, "read", audience="trax-read")
    async with WhipPublisher(plane.url(src.path, "whip"), pub_token, PatternTrack(**SMALL), video_codec=codec) as pub:
        resp = pub.response
        assert resp is not None and resp.status_code == 201
        assert resp.headers["content-type"].startswith("application/sdp")
        assert resp.headers["location"].startswith(f"/{src.path}/whip/")
        assert resp.headers["etag"] and resp.headers["x-request-id"]
        publisher = plane.rt.hub.publisher(src.path)
        assert publisher is not None and publisher.tracks[0].codec == codec
        await wait_for(lambda: publisher.packets > 10)
        players = [WhepPlayer(plane.url(src.path, "whep"), read_token) for _ in range(2)]
        for p in players:
            await p.start()
        try:
            await wait_for(lambda: all(p.frames["video"] >= 45 for p in players))
        finally:
            for p in players:
                await p.close()
        # the server never decoded nor encoded: the viewers decoded what the publisher encoded
        assert all(p.frames["video"] >= 45 for p in players)
    await wait_for(lambda: plane.rt.hub.publisher(src.path) is None)


async def test_refusals_leave_other_sessions_untouched(tmp_path: Path) -> None:
    async with whip_plane(tmp_path, ingest={"publisher_takeover": False}) as plane:  # a 2nd publisher is refused
        await _refusals_leave_other_sessions_untouched(plane)


async def _refusals_leave_other_sessions_untouched(plane: Plane) -> None:
    live = await plane.source()
    other = await plane.source()
    pub_token = await plane.token(live.path, "publish")
    read_token = await plane.token(live.path, "read")
    async with (
        WhipPublisher(plane.url(live.path, "whip"), pub_token, PatternTrack(**SMALL)) as pub,
        WhepPlayer(plane.url(live.path, "whep"), read_token) as viewer,
        httpx.AsyncClient(timeout=30) as http,
    ):
        await wait_for(lambda: viewer.frames["video"] > 10)
        sdp = pub.pc.localDescription.sdp

        async def post(
            path: str, endpoint: str, token: str | None, body: Any = sdp, ctype: str = "application/sdp"
        ) -> httpx.Response:
            headers = {"Content-Type": ctype}
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            return await http.post(plane.url(path, endpoint), content=body, headers=headers)

        def refused(resp: httpx.Response, status: int, code: str) -> None:
            assert resp.status_code == status, resp.text
            body = resp.json()
            assert body["error"]["code"] == code
            assert body["error"]["requestId"] == resp.headers["x-request-id"]
            assert "Traceback" not in resp.text

        other_token = await plane.token(other.path, "publish")
        video_section = sdp[sdp.index("m=video") :]
        many_sections = sdp + video_section * 9
        expired = plane.forge(path=other.path, iat=1, exp=2)
        cases = [
            (await post(other.path, "whip", None), 401, "unauthorized"),
            (await post(other.path, "whip", "garbage"), 401, "unauthorized"),
            (await post(other.path, "whip", expired), 401, "unauthorized"),
            # wrong audience: an SRT/RTMP-only token, and a playback token, on WHIP
            (
                await post(other.path, "whip", await plane.token(other.path, "publish", "trax-ingest")),
                401,
                "unauthorized",
            ),
            (await post(other.path, "whip", await plane.token(other.path, "read", "trax-read")), 401, "unauthorized"),
            # a token for another path is an authentication failure, not a 404
            (await post(other.path, "whip", pub_token), 401, "unauthorized"),
            (await post("inputs/whip-00000000-0000-4000-8000-000000000000", "whip", other_token), 401, "unauthorized"),
            # a valid token for a path nobody provisioned
            (
                await post(
                    "inputs/whip-00000000-0000-4000-8000-000000000000",
                    "whip",
                    plane.forge(path="inputs/whip-00000000-0000-4000-8000-000000000000"),
                ),
                404,
                "not_found",
            ),
            (await post(live.path, "whip", pub_token), 409, "conflict"),
            (await post(other.path, "whip", other_token, body="hello"), 400, "invalid_request"),
            (await post(other.path, "whip", other_token, body="v=0\r\ns=-\r\n"), 400, "invalid_request"),
            (await post(other.path, "whip", other_token, body=b"v=0\r\nm=video \xff\xfe"), 400, "invalid_request"),
            (
                await post(other.path, "whip", other_token, body=sdp.replace("a=fingerprint", "a=fingerprnt")),
                400,
                "invalid_request",
            ),
            (await post(other.path, "whip", other_token, body=many_sections), 400, "invalid_request"),
            (await post(other.path, "whip", other_token, ctype="application/json"), 415, "unsupported_media_type"),
            (await post(other.path, "whip", other_token, body=b"v=0\n" + b"a" * 200_000), 413, "payload_too_large"),
            (await post(other.path, "whep", await plane.token(other.path, "read")), 404, "not_found"),
        ]
        for resp, status, code in cases:
            refused(resp, status, code)
        assert cases[0][0].headers["www-authenticate"].startswith("Bearer")

        # the session resource: only its creator's credential ends it; PATCH is a clear 405
        assert pub.location is not None
        resp = await http.delete(pub.location, headers={"Authorization": f"Bearer {other_token}"})
        refused(resp, 401, "unauthorized")
        resp = await http.delete(pub.location + "x", headers={"Authorization": f"Bearer {pub_token}"})
        refused(resp, 404, "not_found")
        resp = await http.patch(
            pub.location,
            content="a=ice-ufrag:x",
            headers={"Authorization": f"Bearer {pub_token}", "Content-Type": "application/trickle-ice-sdpfrag"},
        )
        refused(resp, 405, "method_not_allowed")
        refused(await http.get(plane.url(live.path, "whip")), 405, "method_not_allowed")
        refused(await http.post(plane.base + "/nothing-here", content=sdp), 404, "not_found")

        # a WHEP viewer counted frames the whole time, and still does
        before = viewer.frames["video"]
        await wait_for(lambda: viewer.frames["video"] > before + 15)
        assert plane.rt.hub.publisher(live.path) is not None
        assert await plane.status(live) == "live"
        assert await plane.status(other) == "idle"
        # nothing refused left a session, a publisher or a reader behind
        assert sorted(s.kind for s in plane.transport.plane.sessions.values()) == ["whep", "whip"]
        assert [p.path for p in plane.rt.hub.publishers()] == [live.path]
        assert plane.rt.hub.publisher(live.path).readers == 1


async def test_cors_lets_a_page_on_another_origin_publish(plane: Plane) -> None:
    src = await plane.source()
    async with httpx.AsyncClient(timeout=10) as http:
        pre = await http.options(
            plane.url(src.path, "whip"),
            headers={
                "Origin": "http://studio.example.test",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert pre.status_code in (200, 204)
        assert pre.headers["access-control-allow-origin"] in ("*", "http://studio.example.test")
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        assert "POST" in pre.headers["access-control-allow-methods"]
        plain = await http.options(plane.url(src.path, "whip"))
        assert plain.status_code == 204 and plain.headers["accept-post"] == "application/sdp"
        refused = await http.post(
            plane.url(src.path, "whip"), content="v=0", headers={"Origin": "http://studio.example.test"}
        )
        # the browser may read the error and the headers a WHIP client needs
        assert refused.headers["access-control-allow-origin"] in ("*", "http://studio.example.test")
        exposed = refused.headers["access-control-expose-headers"].lower()
        assert "location" in exposed and "link" in exposed and "etag" in exposed


async def test_access_token_query_and_delete_end_the_session(plane: Plane) -> None:
    src = await plane.source()
    token = await plane.token(src.path, "publish")
    events: list[Any] = []

    async def on_event(e: Any) -> None:
        if e.type == SOURCE_STATUS_CHANGED and e.data["path"] == src.path:
            events.append(e.data["status"])

    unsub = plane.rt.bus.subscribe(on_event)
    pub = WhipPublisher(plane.url(src.path, "whip") + f"?access_token={token}", "", PatternTrack(**SMALL))
    pub.token = ""  # no Authorization header: the query form alone must work
    await pub.start()
    await wait_for(lambda: events[-1:] == ["live"])
    st = await plane.rt.services.studios.stream_status(plane.op, plane.studio_id)
    assert [(s.id, s.status.value) for s in st.sources] == [(src.id, "live")]
    pub.token = token  # DELETE with the same credential
    await pub.close()
    await wait_for(lambda: events[-1:] == ["idle"])
    unsub()
    assert events == ["connecting", "live", "idle"]
    st = await plane.rt.services.studios.stream_status(plane.op, plane.studio_id)
    assert [s.status.value for s in st.sources] == ["idle"]


PUBLISHER_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys
    logging.basicConfig(level=logging.INFO)
    from trax.ingest.whip.ice import HostCandidates
    from trax.ingest.whip.client import PatternTrack, WhipPublisher

    async def main():
        HostCandidates(["127.0.0.1"]).install()
        pub = await WhipPublisher(sys.argv[1], sys.argv[2], PatternTrack(320, 240, 30)).start()
        print("published", flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())
    """
)


async def test_killed_publisher_goes_idle_by_the_watchdog(plane: Plane, tmp_path: Path) -> None:
    """A SIGKILLed publisher sends no DELETE; ICE consent would take ~30 s, the watchdog takes 2 s here."""
    src = await plane.source()
    token = await plane.token(src.path, "publish")
    script = tmp_path / "publish.py"
    script.write_text(PUBLISHER_SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        plane.url(src.path, "whip"),
        token,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "publisher.log").open("wb"),
        cwd=Path(__file__).parents[2],
        start_new_session=True,
    )
    try:
        await wait_for(lambda: plane.rt.hub.publisher(src.path) is not None, within=30)
        publisher = plane.rt.hub.publisher(src.path)
        assert publisher is not None
        await wait_for(lambda: publisher.packets > 15)
        assert await plane.status(src) == "live"
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), timeout=10)
        # bounded well below ICE consent's ~30 s: only the 2 s watchdog can end it in time
        await wait_for(lambda: plane.rt.hub.publisher(src.path) is None, within=12)

        async def idle() -> bool:
            return await plane.status(src) == "idle"

        await wait_for(idle, within=5)
        assert publisher.closed and publisher.close_reason is None
        assert not plane.transport.plane.sessions  # the peer connection was closed too
    except BaseException:
        print((tmp_path / "publisher.log").read_text(errors="replace")[-3000:])
        raise
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), timeout=10)


async def test_viewers_of_a_publisher_that_leaves_are_ended(plane: Plane) -> None:
    src = await plane.source()
    pub = await WhipPublisher(
        plane.url(src.path, "whip"), await plane.token(src.path, "publish"), PatternTrack(**SMALL)
    ).start()
    viewer = await WhepPlayer(plane.url(src.path, "whep"), await plane.token(src.path, "read")).start()
    try:
        await wait_for(lambda: viewer.frames["video"] > 5)
        await pub.close()
        await wait_for(lambda: not plane.transport.plane.sessions)
        await wait_for(lambda: viewer.pc.connectionState in ("closed", "failed"), within=40)
    finally:
        await viewer.close(delete=False)
    await asyncio.sleep(0)


async def test_a_failed_dtls_handshake_puts_the_source_in_error(plane: Plane) -> None:
    """An offer whose fingerprint does not match the client's certificate: 201, then DTLS fails."""
    src = await plane.source()
    token = await plane.token(src.path, "publish")
    events: list[tuple[str, Any]] = []

    async def on_event(e: Any) -> None:
        if e.type == SOURCE_STATUS_CHANGED and e.data["path"] == src.path:
            events.append((e.data["status"], e.data["reason"]))

    unsub = plane.rt.bus.subscribe(on_event)
    pub = WhipPublisher(plane.url(src.path, "whip"), token, PatternTrack(**SMALL))
    pub.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pub.pc.addTransceiver(pub.tracks[0], direction="sendonly")
    await pub.pc.setLocalDescription(await pub.pc.createOffer())
    lines = pub.pc.localDescription.sdp.split("\r\n")
    forged = "\r\n".join(
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) if line.startswith("a=fingerprint:") else line
        for line in lines
    )
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(
            plane.url(src.path, "whip"),
            content=forged,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
        assert resp.status_code == 201
        await pub.pc.setRemoteDescription(RTCSessionDescription(sdp=resp.text, type="answer"))
        try:
            await wait_for(lambda: events and events[-1][0] == "error", within=30)
        finally:
            unsub()
            await pub.pc.close()
    assert events[0] == ("connecting", None)
    # the reason says which step failed (ICE worked here), in the event and in the API's source
    reason = "WebRTC connection failed: the DTLS handshake failed (no cipher suite in common, or a certificate"
    assert events[-1][0] == "error" and events[-1][1].startswith(reason), events
    got = await plane.rt.services.sources.get(plane.op, plane.studio_id, src.id)
    assert got.status.value == "error" and got.status_reason == events[-1][1]
    assert plane.rt.hub.publisher(src.path) is None


async def test_viewers_coming_and_going_leave_no_task_or_reader_behind(plane: Plane) -> None:
    src = await plane.source()
    read_token = await plane.token(src.path, "read")
    async with WhipPublisher(
        plane.url(src.path, "whip"), await plane.token(src.path, "publish"), PatternTrack(**SMALL)
    ):
        publisher = plane.rt.hub.publisher(src.path)
        assert publisher is not None
        await wait_for(lambda: publisher.packets > 5)
        await asyncio.sleep(0.5)  # let the publisher's own set-up tasks settle
        baseline = len(asyncio.all_tasks())
        for _ in range(3):
            viewers = [await WhepPlayer(plane.url(src.path, "whep"), read_token).start() for _ in range(3)]
            await wait_for(lambda vs=viewers: all(v.frames["video"] > 3 for v in vs))
            for v in viewers:
                await v.close()
        await wait_for(lambda: len(plane.transport.plane.sessions) == 1)
        assert publisher.readers == 0
        await wait_for(lambda: len(asyncio.all_tasks()) <= baseline, within=20)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_a_late_viewer_gets_a_fresh_keyframe_from_the_publisher(plane: Plane, codec: str) -> None:
    """The GOP is too long to replay, so the viewer's arrival makes the server send the publisher a PLI."""
    plane.rt.hub.gop_replay_packets = 5
    src = await plane.source()
    pub_token = await plane.token(src.path, "publish")
    async with WhipPublisher(plane.url(src.path, "whip"), pub_token, PatternTrack(**SMALL), video_codec=codec):
        publisher = plane.rt.hub.publisher(src.path)
        assert publisher is not None
        keyframes: list[int] = []
        original = publisher.send

        def counting_send(packet: Any) -> None:
            if packet.keyframe:
                keyframes.append(publisher.packets)
            original(packet)

        publisher.send = counting_send  # type: ignore[method-assign]
        await wait_for(lambda: publisher.packets > 40)
        before = len(keyframes)
        async with WhepPlayer(plane.url(src.path, "whep"), await plane.token(src.path, "read")) as viewer:
            await wait_for(lambda: viewer.frames["video"] >= 10)
        assert len(keyframes) > before  # a keyframe was made for the newcomer


async def test_a_stream_key_is_accepted_as_the_bearer_credential(plane: Plane) -> None:
    src = await plane.source()
    other = await plane.source()
    _, key = await plane.rt.services.sources.rotate_stream_key(plane.op, plane.studio_id, src.id)
    async with httpx.AsyncClient(timeout=30) as http:
        wrong = await http.post(
            plane.url(other.path, "whip"),
            content="v=0\r\n",
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"},
        )
        assert wrong.status_code == 401  # the key belongs to another path
    async with WhipPublisher(plane.url(src.path, "whip"), key, PatternTrack(**SMALL)) as pub:
        assert pub.response is not None and pub.response.status_code == 201
        await wait_for(lambda: (p := plane.rt.hub.publisher(src.path)) is not None and p.packets > 5)
