"""WHEP from hub packets of any origin: H.264 + AAC as RTMP/SRT deliver them, played by aiortc viewers.

The feed is made here with PyAV in the canonical hub form (Annex B H.264 without
B-frames, raw AAC with its AudioSpecificConfig) and published straight into
the hub, as the RTMP and SRT listeners do. Video passes through; AAC becomes
Opus in one transcoder shared by every viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.ingest.whip_support import Plane, wait_for, whip_plane
from trax.ingest.media import Packet, Track, h264_is_keyframe
from trax.ingest.whip.client import WhepPlayer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FPS = 30
VIDEO = Track(0, "video", "h264", Fraction(1, 1000), width=320, height=240)


def encode_feed(seconds: int, *, b_frames: bool = False) -> tuple[Track, list[Packet]]:
    import av

    video = av.CodecContext.create("libx264", "w")
    video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
    video.time_base = Fraction(1, FPS)
    if b_frames:  # x264's and OBS's defaults: High profile with B-frames, which WebRTC cannot pass through
        video.options = {"profile": "high", "preset": "veryfast", "bf": "2", "g": str(FPS)}
    else:
        video.options = {"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency", "g": str(FPS)}
    video.open()
    audio = av.CodecContext.create("aac", "w")
    audio.sample_rate, audio.layout, audio.format = 44100, "stereo", "fltp"
    audio.time_base = Fraction(1, 44100)
    audio.open()
    aac = Track(1, "audio", "aac", Fraction(1, 1000), extradata=bytes(audio.extradata), sample_rate=44100, channels=2)
    packets: list[Packet] = []
    for n in range(seconds * FPS):
        img = np.full((240, 320, 3), (n * 7) % 255, np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = n
        for p in video.encode(frame):
            packets.append(video_packet(p))
    for p in video.encode(None):
        packets.append(video_packet(p))
    t = np.arange(seconds * 44100) / 44100
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for i in range(0, len(tone) - 1024, 1024):
        frame = av.AudioFrame.from_ndarray(np.stack([tone[i : i + 1024]] * 2), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 44100, i
        for p in audio.encode(frame):
            ms = int(max(0, p.pts) * 1000 / 44100)
            packets.append(Packet(1, bytes(p), ms, ms, True))
    packets.sort(key=lambda p: p.dts)
    return aac, packets


def video_packet(p: Any) -> Packet:
    pts, dts = int(p.pts * 1000 / FPS), int(p.dts * 1000 / FPS)
    return Packet(0, bytes(p), pts, dts, h264_is_keyframe(bytes(p)))


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[Plane]:
    async with whip_plane(tmp_path) as p:
        yield p


async def feed_forever(publisher: Any, packets: list[Packet]) -> None:
    """The packets in a loop at their real pace, as a live encoder would send them."""
    start, loop_ms = time.monotonic(), 4000
    for lap in range(100):
        for p in packets:
            due = start + (lap * loop_ms + p.dts) / 1000 + 0.2
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            shift = lap * loop_ms
            publisher.send(Packet(p.track, p.data, p.pts + shift, p.dts + shift, p.keyframe))


async def test_h264_and_aac_from_the_hub_play_over_whep(plane: Plane) -> None:
    src = await plane.source(kind="rtmp")
    aac, packets = encode_feed(4)
    assert packets[0].keyframe
    publisher = await plane.rt.hub.open_publisher(src.path, "rtmp", [VIDEO, aac])

    sender = asyncio.create_task(feed_forever(publisher, packets))
    try:
        token = await plane.token(src.path, "read", audience="trax-read")
        viewers = [WhepPlayer(plane.url(src.path, "whep"), token) for _ in range(2)]
        for v in viewers:
            await v.start()
        try:
            await wait_for(lambda: all(v.frames["video"] >= 30 and v.frames["audio"] >= 50 for v in viewers))
            # one AAC→Opus transcoder for both viewers; the video passes through
            assert plane.transport.plane.transcoders.active() == [(src.path, "opus")]
            opus = plane.rt.hub.publisher(src.path + "#opus")
            assert opus is not None and opus.readers == 2
            assert publisher.readers == 3  # two viewers' video + the transcoder
        finally:
            for v in viewers:
                await v.close()
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await publisher.close()
    # the source left: the transcoder and its derived path went with it
    await wait_for(lambda: plane.rt.hub.publisher(src.path + "#opus") is None)


async def test_b_frames_are_reencoded_once_for_every_viewer(plane: Plane) -> None:
    src = await plane.source(kind="srt")
    _aac, packets = encode_feed(4, b_frames=True)
    video_only = [p for p in packets if p.track == 0]
    assert any(p.pts != p.dts for p in video_only)  # the feed really has B-frames
    publisher = await plane.rt.hub.open_publisher(src.path, "srt", [VIDEO])
    sender = asyncio.create_task(feed_forever(publisher, video_only))
    try:
        await wait_for(lambda: publisher.reordered)
        token = await plane.token(src.path, "read", audience="trax-read")
        viewers = [WhepPlayer(plane.url(src.path, "whep"), token, audio=False) for _ in range(2)]
        for v in viewers:
            await v.start()
        try:
            await wait_for(lambda: all(v.frames["video"] >= 30 for v in viewers))
            assert plane.transport.plane.transcoders.active() == [(src.path, "h264")]
            derived = plane.rt.hub.publisher(src.path + "#h264")
            assert derived is not None and derived.readers == 2 and not derived.reordered
        finally:
            for v in viewers:
                await v.close()
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await publisher.close()
