"""WHEP viewers of a transcoded stream (x264 B-frames + AAC from ffmpeg over RTMP) are told when the publisher leaves.

Their media comes from a shared transcoder on a derived path, not from the publisher; they must still be closed
when the publisher goes, as viewers of a passthrough stream are, instead of staying frozen on the last picture.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import memory_settings
from tests.ingest.whip_support import wait_for
from tests.support.tools import require_tool
from trax.ingest.whip.client import WhepPlayer
from trax.ports import free_port
from trax.runtime import Runtime
from trax.services import Principal

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_whep_viewer_of_a_transcoded_stream_is_closed_when_the_publisher_leaves(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg", why="a real RTMP publisher with x264 defaults")
    whip = {"enabled": True, "port": 0, "host_candidates": ["127.0.0.1"]}
    settings = memory_settings(tmp_path, ingest={"whip": whip, "rtmp": {"enabled": True, "port": free_port()}})
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        await rt.start_transports()
        acct = await rt.services.accounts.create("acme")
        op = Principal.operator(acct.id)
        studio = await rt.services.studios.create(op, name="s")
        src = await rt.services.sources.create(op, studio.id, name="obs", kind="rtmp")
        creds = await rt.media_tokens.mint(path=src.path, action="publish")
        encoder = await asyncio.create_subprocess_exec(
            ffmpeg, "-nostdin", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", "60", "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-c:a", "aac",
            "-f", "flv", creds.urls["rtmp"],
        )  # fmt: skip
        plane = rt.transports["whip"].plane
        try:
            await wait_for(lambda: (p := rt.hub.publisher(src.path)) is not None and p.packets > 30, within=30)
            read = await rt.media_tokens.mint(path=src.path, action="read", audience="trax-read")
            async with WhepPlayer(read.urls["whep"], "") as viewer:
                await wait_for(lambda: viewer.frames["video"] >= 30 and viewer.frames["audio"] >= 30, within=30)
                assert sorted(c for _, c in plane.transcoders.active()) == ["h264", "opus"]  # really transcoded
                encoder.kill()
                await encoder.wait()
                await wait_for(lambda: rt.hub.publisher(src.path) is None, within=10)
                # the server ends the viewer's session, and the viewer's peer connection learns it (DTLS close)
                await wait_for(lambda: not plane.sessions, within=10)
                await wait_for(lambda: viewer.pc.connectionState in ("closed", "failed"), within=10)
        finally:
            if encoder.returncode is None:
                encoder.kill()
            await encoder.wait()
