"""Recorder: a live hub path into a fragmented MP4 that ffprobe reads, and that survives kill -9."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import pytest

from tests.broadcast.feeds import colour_clip, playing
from tests.support.tools import require_tool
from trax.broadcast.recorder import Recorder
from trax.ingest.hub import PathHub

pytestmark = pytest.mark.anyio

PROGRAM = "studios/studio_01JDQ4V1ZQ7Y9N6X3W2T8R5K0M/program"
ROOT = Path(__file__).resolve().parents[2]


def probe(file: Path) -> dict[str, Any]:
    ffprobe = require_tool("ffprobe")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(file)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def video_seconds(file: Path) -> tuple[float, int]:
    """Span of the video dts and the number of pictures PyAV decodes from the file."""
    first = last = None
    frames = 0
    with av.open(str(file)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.dts is not None:
                t = float(packet.dts * packet.time_base)
                first = t if first is None else first
                last = t
            frames += len(packet.decode())
    assert first is not None and last is not None
    return last - first, frames


@pytest.mark.slow
async def test_records_a_live_path_as_playable_fragmented_mp4(tmp_path: Path) -> None:
    require_tool("ffprobe")
    hub = PathHub(None, idle_timeout=2.0)
    file = tmp_path / "program.mp4"
    clip = colour_clip("red", seconds=2.0, audio_rate=48000)
    recorder = Recorder(hub, PROGRAM, file)
    try:
        async with playing(hub, PROGRAM, clip):
            await recorder.start()
            began = time.monotonic()
            await asyncio.sleep(6.0)
            live = time.monotonic() - began
            async with asyncio.timeout(15):
                result = await recorder.stop()
    finally:
        await hub.close()
    info = probe(file)
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    assert result.duration_seconds is not None
    assert abs(result.duration_seconds - live) <= 1.0
    assert abs(float(info["format"]["duration"]) - live) <= 1.0
    assert result.size_bytes == file.stat().st_size > 0
    assert result.sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    _, frames = video_seconds(file)
    assert frames >= 30 * (live - 1.0)


async def test_stop_without_a_publisher_returns(tmp_path: Path) -> None:
    hub = PathHub(None, idle_timeout=1.0)
    file = tmp_path / "empty.mp4"
    recorder = Recorder(hub, PROGRAM, file)
    try:
        await recorder.start()
        await asyncio.sleep(0.2)
        async with asyncio.timeout(10):
            result = await recorder.stop()
    finally:
        await hub.close()
    assert result.duration_seconds is None
    assert result.size_bytes == (file.stat().st_size if file.exists() else 0)
    assert len(result.sha256) == 64


@pytest.mark.slow
def test_kill_9_leaves_a_playable_file(tmp_path: Path) -> None:
    require_tool("ffprobe")
    file = tmp_path / "killed.mp4"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.broadcast.record_child", str(file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 30)  # bounded: a stuck child fails the test
        line = child.stdout.readline() if ready else ""
        assert line.strip() == "recording", "the recording child did not start"
        time.sleep(5.5)
        assert child.poll() is None
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    info = probe(file)
    assert "h264" in [s["codec_name"] for s in info["streams"]]
    seconds, frames = video_seconds(file)
    assert seconds >= 3.0
    assert frames >= 90
