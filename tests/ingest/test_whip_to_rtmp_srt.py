"""Cross-protocol: what a WHIP publisher sends reaches RTMP and SRT players (real ffmpeg) through the hub."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import memory_settings
from tests.ingest.whip_support import wait_for
from tests.support.tools import require_tool
from trax.ingest.whip.client import PatternTrack, WhipPublisher
from trax.ports import free_port
from trax.runtime import Runtime
from trax.services import Principal

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def frames_read(ffmpeg: str, url: str, want: int) -> int:
    """Decode ``want`` video frames from ``url`` with ffmpeg; the number it reports."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
        "-i", url, "-frames:v", str(want), "-f", "null", "-",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=45)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    frames = [int(line.split("=", 1)[1]) for line in out.decode().splitlines() if line.startswith("frame=")]
    assert proc.returncode == 0, err.decode()[-500:]
    return frames[-1] if frames else 0


async def test_whip_publish_is_readable_over_rtmp_and_srt(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg", why="real RTMP and SRT players")
    ingest = {
        "whip": {"enabled": True, "port": 0, "host_candidates": ["127.0.0.1"]},
        "rtmp": {"enabled": True, "port": free_port()},
        "srt": {"enabled": True, "port": free_port()},
    }
    async with Runtime(memory_settings(tmp_path, ingest=ingest)) as rt:  # type: ignore[arg-type]
        await rt.start_transports()
        acct = await rt.services.accounts.create("acme")
        op = Principal.operator(acct.id)
        studio = await rt.services.studios.create(op, name="s")
        src = await rt.services.sources.create(op, studio.id, name="browser", kind="whip")
        pub = await rt.media_tokens.mint(path=src.path, action="publish")
        read = await rt.media_tokens.mint(path=src.path, action="read")
        assert {"rtmp", "srt", "whep"} <= set(read.urls)
        async with WhipPublisher(pub.urls["whip"], "", PatternTrack(320, 240, 30), video_codec="h264"):
            await wait_for(lambda: (p := rt.hub.publisher(src.path)) is not None and p.packets > 10)
            # H.264 from WebRTC is already in the hub's canonical form: both players decode it as is
            assert await frames_read(ffmpeg, read.urls["rtmp"], 45) >= 45
            assert await frames_read(ffmpeg, read.urls["srt"], 45) >= 45
