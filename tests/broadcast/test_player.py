"""MediaPlayer: files made with ffmpeg played into a hub path and read back by a hub reader."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import pytest

from tests.support.tools import require_tool
from trax.broadcast.player import MediaPlayer
from trax.ingest.hub import PathHub
from trax.ingest.media import Packet, Track

pytestmark = pytest.mark.anyio

PATH = "inputs/media-00000000-0000-4000-8000-000000000001"
FPS = 30


def make_clip(tmp_path: Path, name: str, seconds: float, *extra: str) -> Path:
    """A testsrc2 + sine clip encoded by the real ffmpeg CLI (libx264 -g 30, AAC)."""
    ffmpeg = require_tool("ffmpeg")
    out = tmp_path / name
    cmd = [
        ffmpeg, "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k", *extra, str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=60)
    return out


class Collector:
    """Every packet a hub reader gets from the path, across publishers, with the time it arrived."""

    def __init__(self, hub: PathHub) -> None:
        self.hub = hub
        self.packets: list[Packet] = []
        self.arrivals: list[float] = []
        self.tracks: tuple[Track, ...] = ()
        self.sessions = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            async with self.hub.open_reader(PATH, max_queue=100_000) as reader:
                self.tracks = await reader.tracks()
                self.sessions += 1
                async for packet in reader:
                    self.packets.append(packet)
                    self.arrivals.append(time.monotonic())

    def of(self, kind: str) -> list[Packet]:
        index = next(t.index for t in self.tracks if t.kind == kind)
        return [p for p in self.packets if p.track == index]

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def wait_for(condition: Any, seconds: float) -> None:
    """Poll ``condition`` (state spread over the player, the hub and a reader) until true; fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - no single event covers these conditions
            await asyncio.sleep(0.05)


def decoded_frames(packets: list[Packet]) -> int:
    dec: Any = av.CodecContext.create("h264", "r")
    frames = 0
    for p in packets:
        frames += len(dec.decode(av.Packet(p.data)))
    frames += len(dec.decode(None))
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv", "clip.ts"])
async def test_plays_a_file_in_real_time_as_canonical_media(tmp_path: Path, name: str) -> None:
    clip = make_clip(tmp_path, name, 3.0)
    hub = PathHub(None, idle_timeout=2.0)
    collector = Collector(hub)
    player = MediaPlayer(hub, PATH, clip)
    began = time.monotonic()
    try:
        await player.start()
        await wait_for(lambda: player.status in ("ended", "error"), 15)
        took = time.monotonic() - began
        assert player.status == "ended", player.error
        await wait_for(lambda: hub.publisher(PATH) is None, 5)
    finally:
        await player.stop()
        await collector.close()
        await hub.close()
    assert took >= 2.5  # paced in real time, not dumped at demux speed
    video, audio = collector.of("video"), collector.of("audio")
    assert {t.codec for t in collector.tracks} == {"h264", "aac"}
    assert abs(len(video) - 3 * FPS) <= 3
    assert abs(len(audio) - 3 * 48000 / 1024) <= 4
    assert video[0].keyframe and video[0].data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))
    assert all(b.dts > a.dts for a, b in itertools.pairwise(video))
    assert decoded_frames(video) >= 3 * FPS - 3
    aac = next(t for t in collector.tracks if t.kind == "audio")
    assert aac.extradata and not audio[0].data.startswith(b"\xff\xf1")  # raw AAC, no ADTS
    # arrivals follow the media clock: the last packet comes about 3 s after the first
    assert collector.arrivals[-1] - collector.arrivals[0] >= 2.5


@pytest.mark.slow
async def test_loop_keeps_timestamps_increasing_over_wraps(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "short.mp4", 1.0)
    hub = PathHub(None, idle_timeout=2.0)
    collector = Collector(hub)
    player = MediaPlayer(hub, PATH, clip, loop=True)
    try:
        await player.start()
        await wait_for(lambda: len(collector.packets) > 0 and len(collector.of("video")) >= 3 * FPS + 10, 15)
        assert player.status == "playing"
        assert hub.publisher(PATH) is not None  # never went silent across the wraps
    finally:
        await player.stop()
        await collector.close()
        await hub.close()
    assert collector.sessions == 1
    for kind in ("video", "audio"):
        packets = collector.of(kind)
        assert all(b.dts > a.dts for a, b in itertools.pairwise(packets)), kind
    assert decoded_frames(collector.of("video")) >= 3 * FPS


@pytest.mark.slow
async def test_pause_leaves_the_path_and_resume_continues_later(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "long.mp4", 6.0)
    hub = PathHub(None, idle_timeout=2.0)
    collector = Collector(hub)
    player = MediaPlayer(hub, PATH, clip)
    try:
        await player.start()
        await wait_for(lambda: len(collector.packets) > 60, 10)
        player.set_playing(False)
        await wait_for(lambda: hub.publisher(PATH) is None, 5)
        assert player.status == "paused"
        before = list(collector.of("video"))
        await asyncio.sleep(0.5)
        assert hub.publisher(PATH) is None
        player.set_playing(True)
        await wait_for(lambda: collector.sessions == 2 and len(collector.of("video")) > len(before) + 20, 10)
        assert player.status == "playing"
    finally:
        await player.stop()
        await collector.close()
        await hub.close()
    after = collector.of("video")[len(before) :]
    assert after[0].keyframe  # the new publisher starts on a picture
    assert after[0].dts > before[-1].dts
    assert all(b.dts > a.dts for a, b in itertools.pairwise(after))


@pytest.mark.slow
async def test_created_paused_publishes_nothing_until_played(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, "paused.mp4", 2.0)
    hub = PathHub(None, idle_timeout=1.0)
    collector = Collector(hub)
    player = MediaPlayer(hub, PATH, clip, playing=False)
    try:
        await player.start()
        await asyncio.sleep(1.5)  # longer than idle_timeout: a paused player is simply not on the path
        assert player.status == "paused" and hub.publisher(PATH) is None and not collector.packets
        player.set_playing(True)
        await wait_for(lambda: len(collector.packets) > 10, 5)
        assert player.status == "playing"
    finally:
        await player.stop()
        await collector.close()
        await hub.close()


async def test_missing_file_is_an_error(tmp_path: Path) -> None:
    hub = PathHub(None, idle_timeout=1.0)
    player = MediaPlayer(hub, PATH, tmp_path / "missing.mp4")
    try:
        await player.start()
        await wait_for(lambda: player.status == "error", 5)
    finally:
        await player.stop()
        await hub.close()
    assert player.error and str(tmp_path) not in player.error


async def test_garbage_file_is_an_error_without_a_path(tmp_path: Path) -> None:
    bad = tmp_path / "secret-location" / "garbage.mp4"
    bad.parent.mkdir()
    bad.write_bytes(os.urandom(200_000))
    statuses: list[tuple[str, str, str | None]] = []

    class Sink:
        async def set_status(self, path: str, status: Any, reason: str | None = None) -> None:
            statuses.append((path, status.value, reason))

    hub = PathHub(Sink(), idle_timeout=1.0)
    player = MediaPlayer(hub, PATH, bad)
    try:
        await player.start()
        await wait_for(lambda: player.status == "error", 10)
        await wait_for(lambda: any(s == "error" for _, s, _ in statuses), 5)
    finally:
        await player.stop()
        await hub.close()
    assert player.error
    assert "secret-location" not in player.error and "garbage" not in player.error
    assert "Traceback" not in player.error
    reason = next(r for _, s, r in statuses if s == "error")
    assert reason == player.error
    assert hub.publisher(PATH) is None
