"""Cross-protocol: real ffmpeg publishes over SRT (H.264 without B-frames + AAC); aiortc plays it over WHEP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.ingest.srt_support import require_srt, srt_env
from tests.ingest.whip_support import wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_ffmpeg_srt_publish_is_viewable_over_whep(tmp_path: Path) -> None:
    ffmpeg = require_srt()
    from trax.ingest.whip.client import WhepPlayer

    whip = {"enabled": True, "port": 0, "host_candidates": ["127.0.0.1"]}
    async with srt_env(tmp_path, other_transports={"whip": whip}) as env:
        token = await env.token("publish")
        encoder = await asyncio.create_subprocess_exec(
            ffmpeg, "-nostdin", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", "30", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
            "-pix_fmt", "yuv420p", "-c:a", "aac",
            "-f", "mpegts", env.url(f"publish:{env.path}:trax:{token}"),
        )  # fmt: skip
        try:
            hub = env.runtime.hub
            await wait_for(lambda: (p := hub.publisher(env.path)) is not None and p.packets > 30, within=30)
            publisher = hub.publisher(env.path)
            assert publisher is not None and publisher.protocol == "srt"
            read = await env.runtime.media_tokens.mint(path=env.path, action="read", audience="trax-read")
            async with WhepPlayer(read.urls["whep"], "") as viewer:
                await wait_for(lambda: viewer.frames["video"] >= 45 and viewer.frames["audio"] >= 75, within=30)
            # no B-frames: the video passes through; only AAC is transcoded (once, to Opus)
            active = sorted(c for _, c in env.runtime.transports["whip"].plane.transcoders.active())  # type: ignore[attr-defined]
            assert active == ["opus"], active
        finally:
            if encoder.returncode is None:
                encoder.kill()
            await encoder.wait()
