"""WHEP viewers of an RTMP publisher (ffmpeg with x264 defaults: B-frames + AAC, so the stream is transcoded once).

Their media comes from a shared transcoder on a derived path, not from the publisher; they must still be closed
when the publisher goes, as viewers of a passthrough stream are, instead of staying frozen on the last picture.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
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


@contextlib.asynccontextmanager
async def ffmpeg_over_rtmp(
    tmp_path: Path, seconds: int
) -> AsyncIterator[tuple[Runtime, str, asyncio.subprocess.Process]]:
    """A runtime with RTMP and WHIP/WHEP, and a real ffmpeg publishing x264 (defaults) + AAC to a source over RTMP."""
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
            "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-c:a", "aac",
            "-f", "flv", creds.urls["rtmp"],
        )  # fmt: skip
        try:
            await wait_for(lambda: (p := rt.hub.publisher(src.path)) is not None and p.packets > 30, within=30)
            yield rt, src.path, encoder
        finally:
            if encoder.returncode is None:
                encoder.kill()
            await encoder.wait()


async def test_ffmpeg_rtmp_publish_is_viewable_over_whep(tmp_path: Path) -> None:
    async with ffmpeg_over_rtmp(tmp_path, 30) as (rt, path, _):
        publisher = rt.hub.publisher(path)
        assert publisher is not None
        assert [(t.kind, t.codec) for t in publisher.tracks] == [("video", "h264"), ("audio", "aac")]
        read = await rt.media_tokens.mint(path=path, action="read", audience="trax-read")
        async with WhepPlayer(read.urls["whep"], "") as viewer:
            await wait_for(lambda: viewer.frames["video"] >= 45 and viewer.frames["audio"] >= 75, within=30)
        # x264's defaults carry B-frames: video was re-encoded once, AAC became Opus once
        assert sorted(c for _, c in rt.transports["whip"].plane.transcoders.active()) == ["h264", "opus"]


async def test_whep_viewer_of_a_transcoded_stream_is_closed_when_the_publisher_leaves(tmp_path: Path) -> None:
    async with ffmpeg_over_rtmp(tmp_path, 60) as (rt, path, encoder):
        plane = rt.transports["whip"].plane
        read = await rt.media_tokens.mint(path=path, action="read", audience="trax-read")
        async with WhepPlayer(read.urls["whep"], "") as viewer:
            await wait_for(lambda: viewer.frames["video"] >= 30 and viewer.frames["audio"] >= 30, within=30)
            assert sorted(c for _, c in plane.transcoders.active()) == ["h264", "opus"]  # really transcoded
            encoder.kill()
            await encoder.wait()
            await wait_for(lambda: rt.hub.publisher(path) is None, within=10)
            # the server ends the viewer's session, and the viewer's peer connection learns it (DTLS close)
            await wait_for(lambda: not plane.sessions, within=10)
            await wait_for(lambda: viewer.pc.connectionState in ("closed", "failed"), within=10)
