"""A WHIP guest's Opus audio reaches RTMP readers (ffmpeg) as AAC, encoded once per path however many read it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from aiortc.mediastreams import AudioStreamTrack

from tests.conftest import memory_settings
from tests.ingest.whip_support import wait_for
from tests.support.tools import require_tool
from trax.ingest.whip.client import PatternTrack, WhipPublisher
from trax.ports import free_port
from trax.runtime import Runtime
from trax.services import Principal

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def audio_frames_read(ffmpeg: str, url: str, want: int, audio: int = 0) -> tuple[str, int]:
    """(the codec of the input's audio stream ``audio`` as ffmpeg names it, audio frames it decoded) from ``url``."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-nostdin", "-hide_banner", "-i", url, "-map", f"0:a:{audio}", "-frames:a", str(want),
        "-f", "framecrc", "-",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    log = err.decode(errors="replace")
    assert proc.returncode == 0, log[-800:]
    codecs = re.findall(r"Stream #0:\d+.*?: Audio: (\w+)", log)
    decoded = [line for line in out.decode().splitlines() if line.startswith("0,")]
    return (codecs[audio] if len(codecs) > audio else "none"), len(decoded)


async def test_whip_opus_is_read_over_rtmp_as_aac_encoded_once(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg", why="a real RTMP player")
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
        src = await rt.services.sources.create(op, studio.id, name="guest", kind="whip")
        pub = await rt.media_tokens.mint(path=src.path, action="publish")
        read = await rt.media_tokens.mint(path=src.path, action="read")
        video, audio = PatternTrack(320, 240, 30), AudioStreamTrack()
        async with WhipPublisher(pub.urls["whip"], "", video, audio, video_codec="h264"):
            await wait_for(lambda: (p := rt.hub.publisher(src.path)) is not None and p.packets > 50)
            publisher = rt.hub.publisher(src.path)
            assert publisher is not None
            aac = [t for t in publisher.tracks if t.codec == "aac"]
            assert len(aac) == 1 and aac[0].extradata, publisher.tracks  # one AAC track for the path, with its ASC
            # two RTMP players at once: both decode AAC, from the one encoder
            results = await asyncio.gather(*(audio_frames_read(ffmpeg, read.urls["rtmp"], 40) for _ in range(2)))
            for codec, decoded in results:
                assert codec == "aac" and decoded >= 40, results
            assert len([t for t in publisher.tracks if t.codec == "aac"]) == 1
            # SRT (MPEG-TS) carries both: Opus first (as published), then the same AAC
            assert await audio_frames_read(ffmpeg, read.urls["srt"], 40, audio=1) == ("aac", 40)
