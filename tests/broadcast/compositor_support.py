"""Helpers of the compositor tests: the program decoded as it comes, a compositor for a block, test clips."""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from fractions import Fraction
from typing import Any

import av
import numpy as np

from tests.broadcast.feeds import COLOURS, Clip, colour_clip, colour_name, mean_rgb
from trax.broadcast.compositor import Compositor
from trax.broadcast.layouts import slots
from trax.broadcast.tracks import AAC_LC_48K_STEREO, AUDIO, VIDEO
from trax.domain.program import Layout, OutputSettings
from trax.ingest.hub import PathHub
from trax.ingest.media import H264ParameterSets, Packet, Track

OUT = OutputSettings(width=320, height=180, fps=30, video_bitrate=500_000, audio_bitrate=128_000)
FRAME = 90000 // OUT.fps
CAMS = {c: f"inputs/rtmp-00000000-0000-4000-8000-00000000000{i}" for i, c in enumerate(("red", "green", "blue"))}


class Program:
    """What the compositor publishes, decoded as it comes."""

    def __init__(self, output: OutputSettings = OUT) -> None:
        self.output = output
        self.packets: list[Packet] = []
        self.frames: list[Any] = []
        self._decoder: Any = av.CodecContext.create("h264", "r")
        self._decoded = 0

    def __call__(self, packet: Packet) -> None:
        self.packets.append(packet)

    def video(self) -> list[Packet]:
        return [p for p in self.packets if p.track == VIDEO]

    def audio(self) -> list[Packet]:
        return [p for p in self.packets if p.track == AUDIO]

    def decode(self) -> list[Any]:
        video = self.video()
        for packet in video[self._decoded :]:
            self.frames.extend(self._decoder.decode(av.Packet(packet.data)))
        self._decoded = len(video)
        return self.frames

    def colour(self, layout: Layout, count: int, slot: int) -> str:
        """The colour at the centre of ``slot`` in the latest picture."""
        frames = self.decode()
        if not frames:
            return "none"
        rect = slots(layout, count, self.output.width, self.output.height)[slot]
        cx, cy = rect.x + rect.w // 2, rect.y + rect.h // 2
        return colour_name(mean_rgb(frames[-1], cx - 4, cy - 4, 8, 8))

    async def until(self, check: Callable[[], bool], within: float = 5.0) -> None:
        """Poll ``check`` (it decodes what came) until it holds; ``TimeoutError`` after ``within`` s."""
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {within} s")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def compositing(
    hub: PathHub, paths: Sequence[str], layout: Layout, output: OutputSettings = OUT, *, slate: Any = None
) -> AsyncIterator[tuple[Compositor, Program]]:
    """A started compositor publishing into a :class:`Program` for the block; stopped (and checked) after."""
    program = Program(output)
    compositor = Compositor(hub, paths, layout, output, publish=program, slate=slate)
    async with asyncio.timeout(10):
        await compositor.start()
    try:
        yield compositor, program
    finally:
        async with asyncio.timeout(10):
            await compositor.stop()
        assert compositor.task is not None and compositor.task.done()


def assert_steady(video: list[Packet]) -> None:
    """Strictly increasing dts at the output rate: no step larger than two frames, pts == dts."""
    dts = [p.dts for p in video]
    steps = [b - a for a, b in itertools.pairwise(dts)]
    assert steps and min(steps) > 0, "dts must increase strictly"
    assert max(steps) <= 2 * FRAME, max(steps)
    assert all(p.pts == p.dts for p in video)


def decode_audio(packets: list[Packet]) -> np.ndarray[Any, Any]:
    dec: Any = av.CodecContext.create("aac", "r")
    dec.extradata = AAC_LC_48K_STEREO
    chunks = []
    for packet in packets:
        for frame in dec.decode(av.Packet(packet.data)):
            assert frame.sample_rate == 48000 and len(frame.layout.channels) == 2
            chunks.append(frame.to_ndarray())
    return np.concatenate(chunks, axis=1)


def moving_clip(seconds: float, size: tuple[int, int], fps: int = 30) -> Clip:
    """A 720p-ish clip with motion and texture, so decoding and encoding cost what real video costs."""
    w, h = size
    enc: Any = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, fps), Fraction(fps, 1)
    enc.gop_size, enc.max_b_frames, enc.bit_rate = 2 * fps, 0, 3_000_000
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "repeat-headers=1"}
    rng = np.random.default_rng(1)
    texture = rng.integers(0, 255, (h, w * 2, 3), dtype=np.uint8)
    params = H264ParameterSets()
    packets = []
    step = 90000 // fps
    for i in range(int(seconds * fps)):
        shift = (i * 8) % w
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, shift : shift + w]), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        for pkt in list(enc.encode(frame)) + (list(enc.encode(None)) if i == int(seconds * fps) - 1 else []):
            data, key = params.canonical(bytes(pkt))
            packets.append(Packet(0, data, int(pkt.pts) * step, int(pkt.pts) * step, key))
    track = Track(0, "video", "h264", Fraction(1, 90000), width=w, height=h)
    audio = colour_clip("white", seconds=seconds, size=(64, 36), fps=fps)
    tracks = [track, audio.tracks[1]]
    merged = sorted(
        packets + [p for p in audio.packets if p.track == 1], key=lambda p: float(p.dts * tracks[p.track].time_base)
    )
    return Clip(tracks, merged, seconds)


def opus_clip(colour: str, seconds: float) -> Clip:
    """A WHIP-like source: H.264 picture and Opus sound (48 kHz, 20 ms packets)."""
    video = colour_clip(colour, seconds=seconds, audio_rate=None)
    enc: Any = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48000, "stereo", "s16"
    enc.time_base, enc.bit_rate = Fraction(1, 48000), 96000
    enc.open()
    size = enc.frame_size
    packets = []
    for i in range(int(seconds * 48000) // size):
        t = (np.arange(size) + i * size) / 48000
        tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]).T.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, i * size
        packets += [Packet(1, bytes(p), int(p.pts), int(p.pts), True) for p in enc.encode(frame) if p.pts >= 0]
    tracks = [*video.tracks, Track(1, "audio", "opus", Fraction(1, 48000), sample_rate=48000, channels=2)]
    merged = sorted(video.packets + packets, key=lambda p: float(p.dts * tracks[p.track].time_base))
    return Clip(tracks, merged, seconds)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def solid_frame(colour: str, size: tuple[int, int]) -> Any:
    """A PyAV picture of one colour (rgb24), e.g. a slate."""
    w, h = size
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    rgb[:, :] = COLOURS[colour]
    return av.VideoFrame.from_ndarray(rgb, format="rgb24")


def decode_h264(packets: Sequence[Packet]) -> list[Any]:
    decoder: Any = av.CodecContext.create("h264", "r")
    frames: list[Any] = []
    for packet in packets:
        frames.extend(decoder.decode(av.Packet(packet.data)))
    frames.extend(decoder.decode(None))
    return frames


def flash_clip(seconds: float = 2.0, *, size: tuple[int, int] = (320, 180), fps: int = 30) -> Clip:
    """Black with a white flash and a 100 ms beep at the start of every second: for measuring lip sync."""
    w, h = size
    enc: Any = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, fps), Fraction(fps, 1)
    enc.gop_size, enc.max_b_frames = fps, 0
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "repeat-headers=1"}
    params = H264ParameterSets()
    step = 90000 // fps
    raw: list[Any] = []
    for i in range(int(seconds * fps)):
        rgb = np.full((h, w, 3), 255 if i % fps < 3 else 0, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        raw.extend(enc.encode(frame))
    raw.extend(enc.encode(None))
    packets = []
    for pkt in raw:
        data, key = params.canonical(bytes(pkt))
        packets.append(Packet(0, data, int(pkt.pts) * step, int(pkt.pts) * step, key))
    audio, asc = _beeps(seconds)
    tracks = [
        Track(0, "video", "h264", Fraction(1, 90000), width=w, height=h),
        Track(1, "audio", "aac", Fraction(1, 48000), extradata=asc, sample_rate=48000, channels=2),
    ]
    merged = sorted(packets + audio, key=lambda p: (float(p.dts * tracks[p.track].time_base), p.track))
    return Clip(tracks, merged, seconds)


def _beeps(seconds: float) -> tuple[list[Packet], bytes]:
    """AAC at 48 kHz: 100 ms of 1 kHz at the start of every second, silence otherwise (timestamps as played)."""
    enc: Any = av.CodecContext.create("aac", "w")
    enc.sample_rate, enc.layout, enc.format = 48000, "stereo", "fltp"
    enc.time_base, enc.bit_rate = Fraction(1, 48000), 128000
    t = np.arange(int(seconds * 48000))
    signal = np.where(t % 48000 < 4800, 0.5 * np.sin(2 * np.pi * 1000 * t / 48000), 0.0).astype(np.float32)
    encoded: list[Any] = []
    for i in range(len(signal) // 1024):
        chunk = signal[i * 1024 : (i + 1) * 1024]
        frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 48000, i * 1024
        encoded.extend(enc.encode(frame))
    # the encoder's packets lag its input by its priming delay: their pts (negative first) say when they play
    packets = [Packet(1, bytes(p), int(p.pts), int(p.pts), True) for p in encoded if p.pts is not None and p.pts >= 0]
    return packets, bytes(enc.extradata)


def onsets(levels: Sequence[float], threshold: float) -> list[int]:
    """Indices where ``levels`` rises through ``threshold``."""
    return [i for i in range(1, len(levels)) if levels[i] >= threshold > levels[i - 1]]
