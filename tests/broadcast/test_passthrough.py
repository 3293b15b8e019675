"""The single + passthrough program on the hub: switching, drop-outs, the slate, audio conversion, timestamps."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from fractions import Fraction
from typing import Any

import av
import pytest

from tests.broadcast.feeds import colour_clip, colour_name, mean_rgb, playing
from trax.broadcast.audio import forwardable
from trax.broadcast.passthrough import PassthroughProgram
from trax.broadcast.slate import encode_silence, encode_slate_video
from trax.broadcast.timeline import Timeline
from trax.broadcast.tracks import AUDIO, VIDEO, program_tracks
from trax.domain.program import OutputSettings
from trax.ingest.hub import PathHub
from trax.ingest.media import Packet, Track

pytestmark = pytest.mark.anyio

OUT = OutputSettings(width=320, height=180, fps=30)
PROGRAM = "studios/studio_01JDQ4V1ZQ7Y9N6X3W2T8R5K0M/program"
CAM_A = "inputs/rtmp-00000000-0000-4000-8000-00000000000a"
CAM_B = "inputs/rtmp-00000000-0000-4000-8000-00000000000b"


class Collector:
    """Reads the program path: every packet, and the colour of each decoded picture in order."""

    def __init__(self, hub: PathHub) -> None:
        self.reader = hub.open_reader(PROGRAM, max_queue=100_000)
        self.packets: list[Packet] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for pkt in self.reader:
            self.packets.append(pkt)

    def video(self) -> list[Packet]:
        return [p for p in self.packets if p.track == VIDEO]

    def audio(self) -> list[Packet]:
        return [p for p in self.packets if p.track == AUDIO]

    def colours(self) -> list[str]:
        dec: Any = av.CodecContext.create("h264", "r")
        out: list[str] = []
        for pkt in self.video():
            for frame in dec.decode(av.Packet(pkt.data)):
                out.append(colour_name(mean_rgb(frame, 0, 0, frame.width, frame.height)))
        return out

    async def close(self) -> None:
        self.reader.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_program(hub: PathHub) -> tuple[PassthroughProgram, asyncio.Task[None]]:
    pub = await hub.open_publisher(PROGRAM, "program", program_tracks(OUT.width, OUT.height))
    program = PassthroughProgram(
        hub,
        pub,
        fps=OUT.fps,
        audio_bitrate=128_000,
        slate=encode_slate_video(OUT),
        silence=encode_silence(),
    )
    return program, asyncio.create_task(program.run())


def assert_monotonic(packets: list[Packet]) -> None:
    for track in (VIDEO, AUDIO):
        dts = [p.dts for p in packets if p.track == track]
        assert all(b > a for a, b in itertools.pairwise(dts)), f"track {track} dts not increasing"


def runs(colours: list[str]) -> list[str]:
    """Consecutive duplicates folded: the order in which pictures appeared."""
    out: list[str] = []
    for c in colours:
        if not out or out[-1] != c:
            out.append(c)
    return out


@pytest.mark.slow
async def test_switch_between_sources_at_keyframes_with_continuous_timestamps() -> None:
    hub = PathHub(None, idle_timeout=5)
    red, blue = colour_clip("red", audio_rate=44100), colour_clip("blue", audio_rate=48000)
    program, task = await start_program(hub)
    watch = Collector(hub)
    try:
        async with playing(hub, CAM_A, red), playing(hub, CAM_B, blue):
            program.put_on_air(CAM_A)
            await asyncio.sleep(2.5)
            assert program.on_air == CAM_A
            program.put_on_air(CAM_B)
            await asyncio.sleep(2.5)
            assert program.on_air == CAM_B
            program.put_on_air(CAM_A)
            await asyncio.sleep(2.0)
        await asyncio.sleep(1.5)  # both gone: the slate
    finally:
        await program.publisher.close()
        await task
        await watch.close()
    assert_monotonic(watch.packets)
    order = runs(watch.colours())
    # slate first (waiting for a fresh keyframe), then red, blue, red, then the slate again
    assert [c for c in order if c != "black"] == ["red", "blue", "red"]
    assert order[-1] == "black"
    # the 44.1 kHz source was converted, the 48 kHz one forwarded: program audio is steady 48 kHz frames
    pts = [p.pts for p in watch.audio()]
    assert len(pts) > 40 * 7
    program_seconds = watch.video()[-1].dts / 90000
    assert abs(len(pts) * 1024 / 48000 - program_seconds) < 1.0
    # frames keep coming at about the program's rate across every change (no stall)
    gaps = [b.dts - a.dts for a, b in zip(watch.video(), watch.video()[1:], strict=False)]
    assert max(gaps) <= 90000 // 2


@pytest.mark.slow
async def test_a_source_that_stalls_shows_the_slate_and_comes_back() -> None:
    hub = PathHub(None, idle_timeout=30)
    green = colour_clip("green", audio_rate=None)  # no audio: the program fills in silence
    program, task = await start_program(hub)
    watch = Collector(hub)
    program.put_on_air(CAM_A)
    try:
        async with playing(hub, CAM_A, green, loops=1) as feed:
            await feed  # plays 2 s then leaves
            await asyncio.sleep(2.0)
        async with playing(hub, CAM_A, green, loops=2):
            await asyncio.sleep(3.0)
    finally:
        await program.publisher.close()
        await task
        await watch.close()
    assert_monotonic(watch.packets)
    assert [c for c in runs(watch.colours()) if c in ("green", "black")][:4] == ["black", "green", "black", "green"]
    assert watch.audio(), "silence is sent where the source has no audio"


def test_timeline_never_goes_back_across_segments() -> None:
    t = Timeline(30)
    t.begin(Fraction(100))  # the first segment starts the program at 0
    assert t.video(Fraction(100), Fraction(100)) == (0, 0)
    assert t.video(Fraction(100) + t.frame, Fraction(100) + t.frame) == (3000, 3000)
    assert t.video(Fraction(99), Fraction(99)) is None  # earlier than what was sent
    t.begin(Fraction(7))  # another source, its own clock far behind
    nxt = t.video(Fraction(7), Fraction(7))
    assert nxt == (6000, 6000)
    assert t.audio(Fraction(7)) == round(Fraction(6000, 90000) * 48000)


def test_only_aac_lc_48k_stereo_is_forwarded() -> None:
    tb = Fraction(1, 48000)
    assert forwardable(Track(1, "audio", "aac", tb, extradata=bytes.fromhex("119056e500")))
    assert not forwardable(Track(1, "audio", "aac", tb, extradata=bytes.fromhex("1210")))  # 44.1 kHz
    assert not forwardable(Track(1, "audio", "aac", tb, extradata=bytes.fromhex("1188")))  # mono
    assert not forwardable(Track(1, "audio", "opus", tb))


async def test_a_whip_guest_s_aac_twin_is_forwarded_rather_than_its_opus_converted() -> None:
    """A WHIP path carries Opus and the same sound as AAC (for RTMP readers): passthrough forwards the AAC."""
    from trax.broadcast.passthrough import _Feed

    hub = PathHub(None, idle_timeout=30)
    tb = Fraction(1, 48000)
    tracks = [
        Track(0, "video", "h264", Fraction(1, 90000)),
        Track(1, "audio", "opus", tb, sample_rate=48000, channels=2),
        Track(2, "audio", "aac", tb, bytes.fromhex("1190"), sample_rate=48000, channels=2),
    ]
    assert forwardable(tracks[2])
    pub = await hub.open_publisher(CAM_A, "whip", tracks)
    reader = hub.open_reader(CAM_A)
    try:
        feed = _Feed(reader, 128_000)
        assert feed.bind()
        assert feed.audio is tracks[2] and feed.conformer is None, "no second Opus->AAC encode for the program"
    finally:
        reader.close()
        await pub.close()
        await hub.close()
