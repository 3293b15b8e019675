"""A media file played into a hub path in real time, so a studio can place a ready asset like a camera.

The file is demuxed with PyAV in the player's own worker thread (one thread per
player, so the container is only ever touched by one thread and work submitted
to it runs in order). H.264 and AAC are copied: H.264 from MP4/MOV/MKV goes
through ``h264_mp4toannexb`` and gets its SPS/PPS in front of every keyframe,
AAC stays raw (ADTS headers, as MPEG-TS carries them, are stripped) with its
AudioSpecificConfig in the track. Anything else PyAV decodes is converted to
H.264 (libx264, ultrafast, zerolatency) and AAC 48 kHz stereo in the same thread.

Packets are paced by their dts against the monotonic clock. With ``loop`` the
file is reopened at its end and timestamps carry on, shifted by the file's
span, so they stay strictly increasing across every wrap. Pausing closes the
publisher (the Source goes ``idle``) and keeps the position: what was read but
not sent waits, and resuming reopens the path and continues from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

from trax.domain.errors import Conflict
from trax.ingest.hub import PathHub, Publisher
from trax.ingest.media import H264ParameterSets, Packet, Track
from trax.ingest.srt import adts

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
BATCH_PACKETS = 32
"""Packets read per trip to the worker thread; the next batch is read while this one is paced."""
MAX_LAG = 1.0
"""Seconds behind the clock (a slow conversion, a busy loop) after which pacing restarts from now, not a burst."""
PEEK_PACKETS = 500
"""How far into a file to look for the first ADTS header when the container gives no AudioSpecificConfig."""
_AAC_PROFILES = {"LC": 2, "HE-AAC": 5, "HE-AACv2": 29, "Main": 1}


class PlayerStatus(StrEnum):
    IDLE = "idle"
    PLAYING = "playing"
    PAUSED = "paused"
    ENDED = "ended"
    ERROR = "error"


class MediaError(Exception):
    """A file that cannot be played; the message is for people (no path, no traceback)."""


# --- worker thread: demuxing and converting ---------------------------------------------


class _Stream:
    """Turns one input stream's packets into canonical packets of one output track (file timeline)."""

    track: Track

    def packets(self, packet: Any) -> list[Packet]:
        raise NotImplementedError

    def flush(self) -> list[Packet]:
        """Whatever a decoder still holds at the end of the file."""
        return []

    def reopened(self, stream: Any) -> None:
        """The file was reopened (a loop): carry on with the new container's stream."""


class _H264Copy(_Stream):
    def __init__(self, index: int, stream: Any) -> None:
        ctx = stream.codec_context
        self.track = Track(index, "video", "h264", VIDEO_TIME_BASE, width=ctx.width, height=ctx.height)
        self._params = H264ParameterSets()
        self.reopened(stream)

    def reopened(self, stream: Any) -> None:
        import av

        self._tb = Fraction(stream.time_base)
        extradata = stream.codec_context.extradata or b""
        # avcC (MP4, MOV, MKV) starts with its version byte 1; an Annex B stream (MPEG-TS) needs no filter
        self._bsf = (
            av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream) if extradata[:1] == b"\x01" else None
        )

    def packets(self, packet: Any) -> list[Packet]:
        outs = self._bsf.filter(packet) if self._bsf is not None else [packet]
        result = []
        for out in outs:
            dts = out.dts if out.dts is not None else out.pts
            if dts is None:
                continue
            pts = out.pts if out.pts is not None else dts
            data, key = self._params.canonical(bytes(out))
            result.append(
                Packet(
                    self.track.index,
                    data,
                    round(pts * self._tb / VIDEO_TIME_BASE),
                    round(dts * self._tb / VIDEO_TIME_BASE),
                    key,
                )
            )
        return result


class _AacCopy(_Stream):
    def __init__(self, index: int, stream: Any, asc: bytes) -> None:
        ctx = stream.codec_context
        rate = ctx.sample_rate or AUDIO_RATE
        self.track = Track(
            index, "audio", "aac", Fraction(1, rate), extradata=asc, sample_rate=rate, channels=ctx.channels or None
        )
        self.reopened(stream)

    def reopened(self, stream: Any) -> None:
        self._tb = Fraction(stream.time_base)

    def packets(self, packet: Any) -> list[Packet]:
        dts = packet.dts if packet.dts is not None else packet.pts
        if dts is None:
            return []
        data = bytes(packet)
        if data[:2] >= b"\xff\xf0":  # ADTS (MPEG-TS): the hub carries raw access units
            try:
                data = adts.strip(data)[1]
            except adts.AdtsError:
                return []
        ts = round(dts * self._tb / self.track.time_base)
        return [Packet(self.track.index, data, ts, ts, True)]


class _VideoTranscode(_Stream):
    """Any video PyAV decodes, to H.264 without B-frames (ultrafast, zerolatency)."""

    def __init__(self, index: int, stream: Any) -> None:
        import av

        ctx = stream.codec_context
        width, height = max(2, ctx.width & ~1), max(2, ctx.height & ~1)
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        enc: Any = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.time_base = VIDEO_TIME_BASE
        enc.framerate = Fraction(rate)  # rate control assumes 1/time_base fps otherwise
        enc.gop_size = max(1, round(2 * float(rate)))
        enc.max_b_frames = 0
        enc.options = {"preset": "ultrafast", "tune": "zerolatency"}
        enc.open()
        self.track = Track(index, "video", "h264", VIDEO_TIME_BASE, width=width, height=height)
        self._encoder = enc
        self._params = H264ParameterSets()
        self._step = round(1 / (Fraction(rate) * VIDEO_TIME_BASE))
        self._last: int | None = None
        self.force_keyframe = False
        self.reopened(stream)

    def reopened(self, stream: Any) -> None:
        self._stream = stream
        self._last = None

    def packets(self, packet: Any) -> list[Packet]:
        import av

        try:
            frames = self._stream.codec_context.decode(packet)
        except av.FFmpegError:
            return []  # one bad packet costs one picture
        return [p for frame in frames for p in self._encode(frame)]

    def flush(self) -> list[Packet]:
        import av

        with contextlib.suppress(av.FFmpegError):
            return [p for frame in self._stream.codec_context.decode(None) for p in self._encode(frame)]
        return []

    def _encode(self, frame: Any) -> Iterator[Packet]:
        import av

        pts = round(Fraction(frame.time) / VIDEO_TIME_BASE) if frame.time is not None else None
        if pts is None or (self._last is not None and pts <= self._last):
            pts = (self._last or 0) + self._step if self._last is not None else 0
        self._last = pts
        out = frame.reformat(width=self._encoder.width, height=self._encoder.height, format="yuv420p")
        out.pts, out.time_base = pts, VIDEO_TIME_BASE
        key = self.force_keyframe
        self.force_keyframe = False
        out.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
        for pkt in self._encoder.encode(out):
            data, keyframe = self._params.canonical(bytes(pkt))
            ts = int(pkt.pts) if pkt.pts is not None else pts
            yield Packet(self.track.index, data, ts, ts, keyframe)


class _AudioTranscode(_Stream):
    """Any audio PyAV decodes, to AAC-LC 48 kHz stereo (what a program forwards as is)."""

    def __init__(self, index: int, stream: Any) -> None:
        import av

        enc: Any = av.CodecContext.create("aac", "w")
        enc.sample_rate, enc.layout, enc.format = AUDIO_RATE, "stereo", "fltp"
        enc.time_base = AUDIO_TIME_BASE
        enc.bit_rate = 128_000
        enc.open()  # the AudioSpecificConfig exists once the encoder is open
        self.track = Track(
            index, "audio", "aac", AUDIO_TIME_BASE, extradata=bytes(enc.extradata), sample_rate=AUDIO_RATE, channels=2
        )
        self._encoder = enc
        self.reopened(stream)

    def reopened(self, stream: Any) -> None:
        import av

        self._stream = stream
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=1024)
        # each pass of the file is stamped from its own first frame; the caller shifts passes apart
        self._next: int | None = None

    def packets(self, packet: Any) -> list[Packet]:
        import av

        try:
            frames = self._stream.codec_context.decode(packet)
        except av.FFmpegError:
            return []
        return [p for frame in frames for p in self._encode(frame)]

    def flush(self) -> list[Packet]:
        import av

        with contextlib.suppress(av.FFmpegError):
            return [p for frame in self._stream.codec_context.decode(None) for p in self._encode(frame)]
        return []

    def _encode(self, frame: Any) -> Iterator[Packet]:
        if self._next is None:
            self._next = round(Fraction(frame.time or 0) * AUDIO_RATE)
        frame.pts = None  # stamped here from the first frame on: resampling re-chunks the samples
        for chunk in self._resampler.resample(frame):
            for pkt in self._encoder.encode(chunk):
                yield Packet(self.track.index, bytes(pkt), self._next, self._next, True)
                self._next += self._encoder.frame_size or 1024


class MediaFile:
    """One file as canonical tracks and packets, read in batches (worker thread only).

    Timestamps start near 0 (the first packet's dts) and, when looping, every
    pass is shifted by the span of the file so they keep increasing.
    """

    def __init__(self, file: Path) -> None:
        self.file = file
        self._container: Any = None
        self._inputs: dict[int, tuple[Any, _Stream]] = {}
        self._pending: deque[Any] = deque()
        self._demux: Iterator[Any] | None = None
        self.tracks: tuple[Track, ...] = ()
        self.passes = 0
        self._origin: Fraction | None = None
        self._span_start: Fraction | None = None
        self._span_end: Fraction | None = None
        self._span: Fraction | None = None
        self._last_dts: dict[int, int] = {}

    # --- opening ---------------------------------------------------------------

    def open(self) -> tuple[Track, ...]:
        import av

        try:
            self._container = av.open(str(self.file), "r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(f"The file cannot be read as audio or video ({_describe(exc)}).") from None
        try:
            self._select()
        except (av.FFmpegError, ValueError) as exc:
            self.close()
            raise MediaError(f"The media cannot be decoded ({_describe(exc)}).") from None
        except MediaError:
            self.close()
            raise
        self.tracks = tuple(conv.track for _, conv in self._inputs.values())
        return self.tracks

    def _select(self) -> None:
        video = next(iter(self._container.streams.video), None)
        audio = next(iter(self._container.streams.audio), None)
        chosen = [s for s in (video, audio) if s is not None and s.codec_context is not None]
        if not chosen:
            raise MediaError("The file has no audio or video PyAV can decode.")
        self._demux = self._container.demux(chosen)
        for index, stream in enumerate(chosen):
            self._inputs[stream.index] = (stream, self._converter(index, stream))

    def _converter(self, index: int, stream: Any) -> _Stream:
        name = stream.codec_context.name
        if stream.type == "video":
            return _H264Copy(index, stream) if name == "h264" else _VideoTranscode(index, stream)
        if name == "aac":
            asc = bytes(stream.codec_context.extradata or b"") or self._asc_from_adts(stream)
            if asc:
                return _AacCopy(index, stream, asc)
        return _AudioTranscode(index, stream)

    def _asc_from_adts(self, stream: Any) -> bytes:
        """MPEG-TS gives no AudioSpecificConfig: the first ADTS header says the same (peeked packets are kept)."""
        assert self._demux is not None
        for packet in self._demux:
            self._pending.append(packet)
            if packet.stream.index == stream.index and packet.size:
                with contextlib.suppress(adts.AdtsError):
                    return adts.parse_header(bytes(packet)).audio_specific_config()
                return b""
            if len(self._pending) >= PEEK_PACKETS:
                break
        return b""

    # --- reading ------------------------------------------------------------------

    def request_keyframe(self) -> None:
        for _, conv in self._inputs.values():
            if isinstance(conv, _VideoTranscode):
                conv.force_keyframe = True

    def read(self, loop: bool, count: int = BATCH_PACKETS) -> list[Packet] | None:
        """Up to ``count`` packets in file order; ``None`` at the end (never with ``loop``)."""
        import av

        out: list[Packet] = []
        try:
            while len(out) < count:
                packet = self._next_packet()
                if packet is None:
                    out += self._finish_pass()
                    if not loop:
                        return out or None
                    self._reopen()
                    if self.passes > 1 and self._span is None:
                        raise MediaError("The file holds no playable media.")
                    continue
                if packet.size == 0:
                    continue  # a demuxer's flush marker
                conv = self._inputs[packet.stream.index][1]
                out += self._stamp(conv.packets(packet))
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"Reading the media failed ({_describe(exc)}).") from None
        return out

    def _next_packet(self) -> Any:
        if self._pending:
            return self._pending.popleft()
        assert self._demux is not None
        return next(self._demux, None)

    def _finish_pass(self) -> list[Packet]:
        flushed = [p for _, conv in self._inputs.values() for p in conv.flush()]
        stamped = self._stamp(flushed)
        self.passes += 1
        if self._span is None and self._span_start is not None and self._span_end is not None:
            self._span = max(self._span_end - self._span_start, Fraction(1, 1000))
        return stamped

    def _reopen(self) -> None:
        """Back to the start of the file: a fresh container is more dependable than seeking (MPEG-TS)."""
        import av

        self._container.close()
        self._container = av.open(str(self.file), "r")
        streams = {s.index: s for s in self._container.streams}
        chosen = []
        for index, (_, conv) in list(self._inputs.items()):
            stream = streams[index]
            conv.reopened(stream)
            self._inputs[index] = (stream, conv)
            chosen.append(stream)
        self._demux = self._container.demux(chosen)

    def _stamp(self, packets: list[Packet]) -> list[Packet]:
        """File timeline to output timeline: from the first packet on, each pass after the previous one."""
        out = []
        for p in packets:
            tb = self.tracks[p.track].time_base
            at = p.dts * tb
            if self._origin is None:
                self._origin = at
            if self._span is None:  # the first pass measures the file's span
                end = at + tb
                self._span_start = at if self._span_start is None else min(self._span_start, at)
                self._span_end = end if self._span_end is None else max(self._span_end, end)
            shift = -self._origin + self.passes * (self._span or 0)
            delta = round(shift / tb)
            dts = p.dts + delta
            last = self._last_dts.get(p.track)
            if last is not None and dts <= last:
                continue  # never back in time, whatever the file says
            self._last_dts[p.track] = dts
            out.append(Packet(p.track, p.data, p.pts + delta, dts, p.keyframe))
        return out

    def close(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None


def _describe(exc: BaseException) -> str:
    """A short reason without the file's path (PyAV puts it in its messages)."""
    import av

    if isinstance(exc, av.FFmpegError):
        return (exc.strerror or type(exc).__name__).rstrip(".").lower()
    if isinstance(exc, OSError):
        return (exc.strerror or type(exc).__name__).lower()
    return type(exc).__name__


# --- the player (event loop) ----------------------------------------------------------


class MediaPlayer:
    """Plays ``file`` into hub ``path`` in real time; ``loop`` and ``playing`` can change while it runs.

    ``status`` is ``idle`` before ``start`` and after ``stop``, ``playing``,
    ``paused``, ``ended`` (the end of a file played once) or ``error`` with a
    human reason in ``error``. It never raises out of its task.
    """

    def __init__(self, hub: PathHub, path: str, file: Path, *, loop: bool = False, playing: bool = True) -> None:
        self.hub = hub
        self.path = path
        self.file = file
        self.status = PlayerStatus.IDLE
        self.error: str | None = None
        self.publisher: Publisher | None = None
        self.sent = 0
        self._loop = loop
        self._playing = playing
        self._changed = asyncio.Event()
        self._media = MediaFile(file)
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._queue: deque[Packet] = deque()
        self._fetch: asyncio.Future[list[Packet] | None] | None = None
        self._eof = False
        self._anchor: tuple[float, float] | None = None

    def __repr__(self) -> str:
        return f"<MediaPlayer {self.path} {self.status.value} sent={self.sent}>"

    @property
    def loop(self) -> bool:
        return self._loop

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def tracks(self) -> tuple[Track, ...]:
        return self._media.tracks

    def set_loop(self, loop: bool) -> None:
        self._loop = loop

    def set_playing(self, playing: bool) -> None:
        self._playing = playing
        self._changed.set()

    async def start(self) -> None:
        """Open the file (in the worker thread) and start playing; a bad file ends in ``error``, not an exception."""
        if self._task is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trax-player")
        self._task = asyncio.create_task(self._run(), name=f"trax-player-{self.path}")

    async def wait(self) -> None:
        """Until the player ends by itself (the end of the file, an error)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop playing and leave the path (the Source goes ``idle``)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._leave()
        if self._executor is not None:
            # queued behind any read in flight: the container is never closed under the reader's feet
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(self._executor.submit(self._media.close))
            self._executor.shutdown(wait=False)
            self._executor = None
        if self.status is not PlayerStatus.ERROR:
            self.status = PlayerStatus.IDLE

    # --- the task ---------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._work(self._media.open)
            await self._play()
        except MediaError as exc:
            await self._fail(str(exc))
        except Conflict:
            await self._fail("Another publisher is on this path.", leave=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a player never takes its studio down
            log.exception("%s: media player failed", self.path)
            await self._fail(f"The media player failed ({type(exc).__name__}).")

    async def _play(self) -> None:
        while True:
            if not self._playing:
                await self._pause()
                continue
            packet = await self._next()
            if packet is None:
                break
            if not await self._wait_due(packet):
                continue  # paused while waiting: the packet stays first in line
            self._queue.popleft()
            if self.publisher is None:
                await self._enter()
            assert self.publisher is not None
            self.publisher.send(packet)
            self.sent += 1
        await self._leave()
        self.status = PlayerStatus.ENDED

    async def _next(self) -> Packet | None:
        """The next packet to send (left in the queue), reading ahead one batch."""
        while not self._queue:
            if self._eof:
                return None
            batch = await self._take_batch()
            if batch is None:
                self._eof = True
            else:
                self._queue.extend(batch)
        if self._fetch is None and not self._eof:
            self._fetch = self._read_ahead()
        return self._queue[0]

    def _read_ahead(self) -> asyncio.Future[list[Packet] | None]:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._media.read, self._loop)

    async def _take_batch(self) -> list[Packet] | None:
        fetch, self._fetch = self._fetch, None
        if fetch is None:
            fetch = self._read_ahead()
        return await fetch

    async def _wait_due(self, packet: Packet) -> bool:
        """Sleep until the packet is due on the monotonic clock; ``False`` when paused meanwhile."""
        at = float(packet.dts * self.tracks[packet.track].time_base)
        now = time.monotonic()
        if self._anchor is None or now - (self._anchor[0] + at - self._anchor[1]) > MAX_LAG:
            self._anchor = (now, at)
        delay = self._anchor[0] + at - self._anchor[1] - now
        if delay > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._changed.wait()
        return self._playing and time.monotonic() >= self._anchor[0] + at - self._anchor[1] - 0.001

    async def _enter(self) -> None:
        self.publisher = await self.hub.open_publisher(self.path, "media", self.tracks)
        self.publisher.on_keyframe_request = self._request_keyframe
        self.status = PlayerStatus.PLAYING

    def _request_keyframe(self) -> None:
        # only a converted video can make one; the flag is read by the worker thread at its next picture
        self._media.request_keyframe()

    async def _pause(self) -> None:
        await self._leave()
        self.status = PlayerStatus.PAUSED
        while not self._playing:
            self._changed.clear()
            await self._changed.wait()
        self._anchor = None  # real time restarts at the packet we stopped on

    async def _leave(self, reason: str | None = None) -> None:
        pub, self.publisher = self.publisher, None
        if pub is not None:
            await pub.close(reason)

    async def _fail(self, reason: str, *, leave: bool = True) -> None:
        self.status = PlayerStatus.ERROR
        self.error = reason
        log.info("%s: media player error: %s", self.path, reason)
        if self.publisher is None and leave:
            # the Source says why: a publisher that leaves with a reason turns it ``error``
            with contextlib.suppress(Conflict):
                self.publisher = await self.hub.open_publisher(self.path, "media", self.tracks)
        await self._leave(reason)

    async def _work(self, fn: Any, *args: Any) -> Any:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
