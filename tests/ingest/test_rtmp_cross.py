"""RTMP playback of a feed that arrived over another protocol (SRT): remux only, whatever the publisher used."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.ingest.rtmp.support import run as run_client
from tests.ingest.srt_support import FPS, SECONDS, decoded_file_frames, publish_cmd, require_srt, srt_env
from tests.support.tools import require_tool

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_srt_feed_played_over_rtmp(tmp_path: Path) -> None:
    require_srt()
    ffmpeg = require_tool("ffmpeg")
    async with srt_env(tmp_path, other_transports={"rtmp": {"enabled": True, "port": 0}}) as env:
        rtmp_port = env.runtime.transports["rtmp"].port  # type: ignore[attr-defined]
        publish, read = await env.token("publish"), await env.token("read")
        out = tmp_path / "from-srt.flv"
        play = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        play += ["-i", f"rtmp://127.0.0.1:{rtmp_port}/{env.path}?user=trax&pass={read}", "-c", "copy", "-f", "flv"]
        player = asyncio.create_task(run_client([*play, str(out)], 60))
        async with asyncio.timeout(10):
            while not env.runtime.hub._waiting.get(env.path):  # noqa: ASYNC110 - the player is attached to the hub
                await asyncio.sleep(0.05)
        rc, err = await run_client(publish_cmd(env.url(f"publish:{env.path}:trax:{publish}")), 60)
        assert rc == 0, err
        prc, perr = await player
        assert prc == 0, perr
        played = decoded_file_frames(out)
        assert played.get("video", 0) >= 0.95 * FPS * SECONDS, played
        assert played.get("audio", 0) > 0, played
