"""srt-live-transmit as a publisher: frames arrive, and its normal end of stream is an INFO line, not a warning."""

from __future__ import annotations

import asyncio
import logging
import shlex
from pathlib import Path

import pytest

from tests.ingest.srt_support import FPS, collect, decoded_frames, require_srt, run, srt_env
from tests.support.tools import require_tool

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SECONDS = 3


async def test_an_ended_srt_live_transmit_input_is_not_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ffmpeg = require_srt()
    slt = require_tool("srt-live-transmit")
    caplog.set_level(logging.INFO, logger="trax")
    async with srt_env(tmp_path) as env:
        token = await env.token("publish")
        encode = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re"]
        encode += ["-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}:duration={SECONDS}"]
        encode += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS), "-pix_fmt", "yuv420p"]
        encode += ["-f", "mpegts", "-mpegts_flags", "+resend_headers", "-"]
        url = f"srt://127.0.0.1:{env.port}?streamid=publish:{env.path}:trax:{token}"
        send = [slt, "-a:no", "-q", "-chunk:1316", "file://con", url]
        # srt-live-transmit connects, then its input ends before any media: a normal end too
        rc, err = await run(["bash", "-o", "pipefail", "-c", f"true | {shlex.join(send)}"], limit=30)
        assert rc == 0, err
        async with asyncio.timeout(10):
            while not any("ended before any media" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        pipeline = f"{shlex.join(encode)} | {shlex.join(send)}"
        reading = asyncio.create_task(collect(env))
        rc, err = await run(["bash", "-o", "pipefail", "-c", pipeline], limit=30)
        assert rc == 0, err
        tracks, packets = await asyncio.wait_for(reading, 20)
        assert decoded_frames(tracks, packets)["video"] >= 0.9 * SECONDS * FPS
        await asyncio.sleep(0.5)  # the connection thread's last lines
        ours = [r for r in caplog.records if r.name.startswith("trax.ingest")]
        assert any("stopped publishing" in r.getMessage() for r in ours)
        alarming = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
        assert alarming == []
