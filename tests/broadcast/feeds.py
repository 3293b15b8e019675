"""Test sources published straight into a hub path: a solid colour in H.264 and a tone in AAC, in real time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from trax.ingest.hub import PathHub
from trax.ingest.media import H264ParameterSets, Packet, Track

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}


@dataclass
class Clip:
    tracks: list[Track]
    packets: list[Packet]
    """Sorted by time (dts in seconds across tracks)."""
    seconds: float


def colour_clip(
    colour: str,
    *,
    seconds: float = 2.0,
    size: tuple[int, int] = (320, 180),
    fps: int = 30,
    audio_rate: int | None = 44100,
    gop: int = 30,
) -> Clip:
    """A clip of one colour (and a 440 Hz tone at ``audio_rate``), as canonical hub packets."""
    w, h = size
    enc: Any = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = Fraction(1, fps)
    enc.framerate = Fraction(fps, 1)
    enc.gop_size = gop
    enc.max_b_frames = 0
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "repeat-headers=1"}
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    rgb[:, :] = COLOURS[colour]
    frames = int(seconds * fps)
    tracks = [Track(0, "video", "h264", Fraction(1, 90000), width=w, height=h)]
    params = H264ParameterSets()
    packets: list[tuple[float, Packet]] = []
    step = 90000 // fps
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        for pkt in enc.encode(frame):
            data, key = params.canonical(bytes(pkt))
            packets.append((int(pkt.pts) / fps, Packet(0, data, int(pkt.pts) * step, int(pkt.pts) * step, key)))
    for pkt in enc.encode(None):
        data, key = params.canonical(bytes(pkt))
        packets.append((int(pkt.pts) / fps, Packet(0, data, int(pkt.pts) * step, int(pkt.pts) * step, key)))
    if audio_rate:
        aenc: Any = av.CodecContext.create("aac", "w")
        aenc.sample_rate, aenc.layout, aenc.format = audio_rate, "stereo", "fltp"
        aenc.time_base = Fraction(1, audio_rate)
        aenc.bit_rate = 96000
        n = int(seconds * audio_rate) // 1024
        t = np.arange(1024) / audio_rate
        for i in range(n):
            tone = (0.3 * np.sin(2 * np.pi * 440 * (t + i * 1024 / audio_rate))).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            frame.sample_rate = audio_rate
            frame.pts = i * 1024
            for pkt in aenc.encode(frame):
                packets.append((int(pkt.pts) / audio_rate, Packet(1, bytes(pkt), int(pkt.pts), int(pkt.pts), True)))
        # the encoder has its AudioSpecificConfig once it has opened (at the first frame)
        asc = bytes(aenc.extradata)
        tracks.append(
            Track(1, "audio", "aac", Fraction(1, audio_rate), extradata=asc, sample_rate=audio_rate, channels=2)
        )
    packets.sort(key=lambda p: (p[0], p[1].track))
    return Clip(tracks, [p for _, p in packets], seconds)


async def play(hub: PathHub, path: str, clip: Clip, *, loops: int = 1, close: bool = True) -> int:
    """Publish ``clip`` into ``path`` in real time, ``loops`` times (timestamps continue); packets sent."""
    pub = await hub.open_publisher(path, "test", clip.tracks)
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    try:
        for n in range(loops):
            for pkt in clip.packets:
                tb = clip.tracks[pkt.track].time_base
                at = n * clip.seconds + float(pkt.dts * tb)
                delay = start + at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                shift = round(n * clip.seconds / tb)
                pub.send(Packet(pkt.track, pkt.data, pkt.pts + shift, pkt.dts + shift, pkt.keyframe))
                sent += 1
    finally:
        if close:
            await pub.close()
    return sent


@contextlib.asynccontextmanager
async def playing(hub: PathHub, path: str, clip: Clip, *, loops: int = 1000) -> AsyncIterator[asyncio.Task[int]]:
    """``play`` in the background for the duration of the block."""
    task = asyncio.create_task(play(hub, path, clip, loops=loops))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        pub = hub.publisher(path)
        if pub is not None:
            await pub.close()


def mean_rgb(frame: Any, x: int, y: int, w: int, h: int) -> tuple[int, int, int]:
    """The mean colour of a rectangle of a decoded frame."""
    rgb = frame.to_ndarray(format="rgb24")[y : y + h, x : x + w]
    r, g, b = rgb.reshape(-1, 3).mean(axis=0)
    return int(r), int(g), int(b)


def colour_name(rgb: tuple[int, int, int]) -> str:
    """The nearest named colour (black included), for telling sources apart in a picture."""
    named = {**COLOURS, "black": (0, 0, 0)}
    return min(named, key=lambda n: sum((a - b) ** 2 for a, b in zip(named[n], rgb, strict=True)))
