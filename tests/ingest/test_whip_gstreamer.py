"""GStreamer webrtcbin publishes over WHIP, and an aiortc WHEP viewer decodes it.

Debian bookworm's ``simple-whip-client`` aborts at start (libsoup2 in the binary, libsoup3 in GStreamer's webrtc
plugin), so webrtcbin is driven by ``tests/ingest/gst/webrtcbin_whip.py`` (ctypes, signalling only).

webrtcbin offers ``a=setup:actpass`` with an RSA certificate; trax must take the DTLS server role and share a
cipher suite with it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ingest.whip_support import wait_for, whip_plane
from tests.support.tools import require, require_tool
from trax.ingest.whip.client import WhepPlayer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CLIENT = Path(__file__).parent / "gst" / "webrtcbin_whip.py"

VIDEO = {
    "h264": "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert"
    " ! queue ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=600"
    " ! video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 pt=96"
    " ! queue ! application/x-rtp,media=video,encoding-name=H264,payload=96",
    "vp8": "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert"
    " ! queue ! vp8enc deadline=1 keyframe-max-dist=60 ! rtpvp8pay pt=97"
    " ! queue ! application/x-rtp,media=video,encoding-name=VP8,payload=97",
}
AUDIO = (
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=111"
    " ! queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111"
)


@pytest.mark.parametrize("codec", ["h264", "vp8"])
async def test_simple_whip_client_publishes_and_whep_decodes(tmp_path: Path, codec: str) -> None:
    inspect = require_tool("gst-inspect-1.0", why="GStreamer webrtcbin as a WHIP publisher")
    for element in ("webrtcbin", "nicesink", "x264enc", "vp8enc", "opusenc"):
        probe = await asyncio.create_subprocess_exec(
            inspect, element, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        found = await asyncio.wait_for(probe.wait(), 30) == 0
        require(
            found, f"GStreamer element {element} is missing (gstreamer1.0-plugins-bad/-good/-ugly, gstreamer1.0-nice)"
        )
    async with whip_plane(tmp_path, host_candidates=None) as plane:  # libnice offers no loopback candidate
        src = await plane.source()
        token = await plane.token(src.path, "publish", audience="trax-talk")
        log = (tmp_path / "whip-client.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CLIENT), plane.url(src.path, "whip"), token, VIDEO[codec], AUDIO,
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            try:
                await wait_for(lambda: (p := plane.rt.hub.publisher(src.path)) is not None and p.packets > 30, 20)
            except TimeoutError:
                st = await plane.rt.services.sources.get(plane.op, plane.studio_id, src.id)
                raise AssertionError(
                    f"no media from webrtcbin; source {st!r}\n"
                    + (tmp_path / "whip-client.log").read_text(errors="replace")[-3000:]
                ) from None
            publisher = plane.rt.hub.publisher(src.path)
            assert publisher is not None and {t.codec for t in publisher.tracks} == {
                codec,
                "opus",
                "aac",
            }  # AAC: for RTMP
            read = await plane.token(src.path, "read", audience="trax-read")
            async with WhepPlayer(plane.url(src.path, "whep"), read) as viewer:
                await wait_for(lambda: viewer.frames["video"] >= 30 and viewer.frames["audio"] >= 30, within=20)
        finally:
            if proc.returncode is None:
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            log.close()
