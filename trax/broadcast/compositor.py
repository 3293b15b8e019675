"""The composite program: several sources decoded, laid out on one canvas, encoded once.

One *feed* per source path reads the hub and decodes its packets as they come,
once, however many slots show it: the latest picture is kept (not scaled) and the
sound is resampled to 48 kHz stereo into a small jitter buffer. A *tick* loop
runs at exactly the output frame rate off the monotonic clock: each tick pastes
every shown source's latest picture (scaled once per new picture and slot) into
a YUV 4:2:0 canvas, encodes it with libx264, and mixes and encodes the audio
that belongs to the same stretch of time. Timestamps come from the frame index,
never from the sources, so whatever the sources do the program's clock runs on.

A source with no publisher, or silent for ``STALE_AFTER`` seconds, shows the
slate (black unless one is given) and plays silence; its feed opens a fresh
reader so it comes back by itself. All codec work runs in worker threads (PyAV
releases the GIL), off the event loop.

:func:`encode_slate` makes the short pre-encoded clip a passthrough program loops
when its on-air source has nothing to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from trax.broadcast.encoders import aac_encoder, h264_encoder
from trax.broadcast.layouts import Rect, fit, slots
from trax.broadcast.tracks import AAC_FRAME, AUDIO, AUDIO_CHANNELS, AUDIO_RATE, VIDEO
from trax.domain.errors import Conflict, Unavailable
from trax.domain.program import MAX_PROGRAM_SOURCES, Layout, OutputSettings
from trax.ingest.hub import PathHub, Publisher, Reader
from trax.ingest.media import H264ParameterSets, Packet, Track

log = logging.getLogger(__name__)

DECODERS = {"h264": "h264", "hevc": "hevc", "vp8": "vp8", "aac": "aac", "opus": "opus"}
STALE_AFTER = 1.0
"""Seconds without a packet after which a source shows the slate and its reader is reopened."""
READER_QUEUE = 600
AUDIO_PRIME = AUDIO_RATE // 10
"""Samples a source buffers before it is mixed (and again after running dry): absorbs packet jitter."""
AUDIO_MAX = 2 * AUDIO_PRIME
"""Past this many buffered samples (a GOP replay, a clock drifting fast) the oldest are dropped down to
``AUDIO_PRIME``: the picture shows the newest frame at once, so every buffered sample is lip-sync error."""
MAX_GAP = 1.0
"""A hole in a source's audio timestamps up to this long (DTX, lost packets) is filled with silence so the
sound after it stays in step with the picture; a longer jump is a discontinuity, not a hole."""
MAX_LAG = 0.5
"""Seconds behind the clock after which the tick loop stops trying to catch up (overload)."""
BLACK_YUV = (16, 128, 128)
FPS_WINDOW = 2.0
"""Seconds of ticks the measured frame rate is averaged over."""
"""A still picture needs little: the pre-encoded slate is small to loop."""

Planes = tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]


def _planes(buffer: npt.NDArray[np.uint8], width: int, height: int) -> Planes:
    """Y, U, V views into a contiguous yuv420p buffer of shape (height * 3 / 2, width)."""
    flat = buffer.reshape(-1)
    luma = width * height
    chroma = luma // 4
    y = flat[:luma].reshape(height, width)
    u = flat[luma : luma + chroma].reshape(height // 2, width // 2)
    v = flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2)
    return y, u, v


def _black(width: int, height: int) -> npt.NDArray[np.uint8]:
    buffer = np.empty((height * 3 // 2, width), dtype=np.uint8)
    for plane, value in zip(_planes(buffer, width, height), BLACK_YUV, strict=True):
        plane.fill(value)
    return buffer


class Scaler:
    """Letterboxes pictures into rects, once per (picture version, rect): swscale in C, then cached."""

    def __init__(self) -> None:
        self._cache: dict[Rect, tuple[int, Rect, Planes]] = {}

    def get(self, version: int, picture: Any, rect: Rect) -> tuple[Rect, Planes]:
        """``picture`` (any size and pixel format) fitted into ``rect``: its placement and yuv420p planes."""
        cached = self._cache.get(rect)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        box = fit(picture.width, picture.height, rect)
        frame = picture.reformat(width=box.w, height=box.h, format="yuv420p")
        planes = _planes(np.ascontiguousarray(frame.to_ndarray()), box.w, box.h)
        if len(self._cache) > 8:  # layouts change rarely; do not keep every rect ever used
            self._cache.clear()
        self._cache[rect] = (version, box, planes)
        return box, planes


class AudioBuffer:
    """One source's resampled sound (48 kHz stereo float), filled by its decoder and drained by the mixer."""

    def __init__(self) -> None:
        self._chunks: deque[npt.NDArray[np.float32]] = deque()
        self._samples = 0
        self._primed = False
        self._lock = threading.Lock()  # the decoder and the mixer run in different worker threads
        self.underruns = 0
        """Times the mixer found it dry (and buffered up again): a source late or jittery beyond ``AUDIO_PRIME``."""
        self.dropped = 0
        """Samples dropped to keep it under ``AUDIO_MAX``: a burst (GOP replay) or a source clock running fast."""

    @property
    def samples(self) -> int:
        return self._samples

    def write(self, chunk: npt.NDArray[np.float32]) -> None:
        with self._lock:
            self._chunks.append(chunk)
            self._samples += chunk.shape[1]
            if self._samples > AUDIO_MAX:  # keep latency bounded: drop the oldest down to the priming level
                self.dropped += self._samples - AUDIO_PRIME
                self._drop(self._samples - AUDIO_PRIME)

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._samples = 0
            self._primed = False

    def read(self, count: int) -> npt.NDArray[np.float32] | None:
        """``count`` samples (zero-padded when running dry), or ``None`` while priming."""
        with self._lock:
            if not self._primed:
                if self._samples < AUDIO_PRIME:
                    return None
                self._primed = True
            out = np.zeros((AUDIO_CHANNELS, count), dtype=np.float32)
            filled = 0
            while filled < count and self._chunks:
                chunk = self._chunks[0]
                take = min(count - filled, chunk.shape[1])
                out[:, filled : filled + take] = chunk[:, :take]
                filled += take
                self._consume(take)
            if filled < count:
                self._primed = False  # ran dry: buffer up again rather than stutter
                self.underruns += 1
            return out

    def _consume(self, count: int) -> None:
        chunk = self._chunks[0]
        if count >= chunk.shape[1]:
            self._chunks.popleft()
        else:
            self._chunks[0] = chunk[:, count:]
        self._samples -= count

    def _drop(self, count: int) -> None:
        while count > 0 and self._chunks:
            take = min(count, self._chunks[0].shape[1])
            self._consume(take)
            count -= take


class Feed:
    """One source path: its hub reader, its decoders, its latest picture and its buffered sound."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.latest: tuple[int, Any] = (0, None)
        """(version, the latest decoded video frame or ``None`` for black), swapped as one reference
        because the decoding and the rendering threads use it; the version tells slots to scale again."""
        self.audio = AudioBuffer()
        self.task: asyncio.Task[None] | None = None
        self.stale: Publisher | None = None
        """The publisher that went quiet, if the reader was reopened for that."""
        self.decoded = 0
        self.failed = 0
        self._video: tuple[int, Any] | None = None
        self._audio: tuple[Track, Any, Any] | None = None
        self._audio_next: Fraction | None = None
        """Source time (s) where the sound decoded so far ends: the next packet should start there."""
        self._keyframe_seen = False
        self._scaler = Scaler()

    def __repr__(self) -> str:
        return f"<Feed {self.path} decoded={self.decoded} live={self.latest[1] is not None}>"

    # --- decoding (worker thread) ----------------------------------------------------------

    def open(self, tracks: Sequence[Track]) -> None:
        """Fresh decoders for a new publisher's tracks (the first video and the first audio track)."""
        import av

        self._video, self._audio, self._audio_next, self._keyframe_seen = None, None, None, False
        video = next((t for t in tracks if t.kind == "video"), None)
        audio = next((t for t in tracks if t.kind == "audio"), None)
        if video is not None:
            dec: Any = av.CodecContext.create(DECODERS[video.codec], "r")
            if video.extradata:
                dec.extradata = video.extradata
            self._video = (video.index, dec)
        if audio is not None:
            adec: Any = av.CodecContext.create(DECODERS[audio.codec], "r")
            if audio.extradata:
                adec.extradata = audio.extradata
            if audio.sample_rate:
                adec.sample_rate = audio.sample_rate
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
            self._audio = (audio, adec, resampler)

    def decode(self, packets: Sequence[Packet]) -> None:
        """Decode ``packets``; keep the last picture, buffer all the sound."""
        import av

        picture = None
        for packet in packets:
            try:
                if self._video is not None and packet.track == self._video[0]:
                    # a fresh decoder fed P-frames shows grey smears: start on a keyframe
                    self._keyframe_seen = self._keyframe_seen or packet.keyframe
                    if not self._keyframe_seen:
                        continue
                    for frame in self._video[1].decode(av.Packet(packet.data)):
                        picture = frame
                        self.decoded += 1
                elif self._audio is not None and packet.track == self._audio[0].index:
                    self._decode_audio(packet)
            except (av.FFmpegError, ValueError) as exc:
                # one corrupt access unit costs a frame, not the program
                self.failed += 1
                log.debug("%s: a packet could not be decoded (%s)", self.path, type(exc).__name__)
        if picture is not None:
            self.latest = (self.latest[0] + 1, picture)

    def _decode_audio(self, packet: Packet) -> None:
        import av

        assert self._audio is not None
        track, decoder, resampler = self._audio
        start = packet.pts * track.time_base
        self._fill_gap(start)
        end = start
        for frame in decoder.decode(av.Packet(packet.data)):
            end += Fraction(frame.samples, frame.sample_rate)
            frame.pts = None  # the mixer clocks the sound by sample count, not by the source's timestamps
            for out in resampler.resample(frame):
                self.audio.write(out.to_ndarray().astype(np.float32, copy=False))
        self._audio_next = end

    def _fill_gap(self, start: Fraction) -> None:
        """Silence for a hole in the source's sound: the mixer counts samples, so a hole would pull what
        follows early (and drain the buffer into an underrun) instead of keeping it in step with the picture."""
        if self._audio_next is None:
            return
        gap = start - self._audio_next
        if 0.005 < gap <= MAX_GAP:
            self.audio.write(np.zeros((AUDIO_CHANNELS, round(gap * AUDIO_RATE)), dtype=np.float32))

    def blank(self) -> None:
        """Nothing to show or play (no publisher, or it went quiet)."""
        self.latest = (self.latest[0] + 1, None)
        self.audio.clear()

    # --- scaling (render thread) -------------------------------------------------------

    def scaled(self, rect: Rect) -> tuple[Rect, Planes] | None:
        """The latest picture letterboxed into ``rect``: its placement and planes, scaled once per picture."""
        version, picture = self.latest
        if picture is None:
            return None
        return self._scaler.get(version, picture, rect)


@dataclass(frozen=True, slots=True)
class CompositorStats:
    """A snapshot of how the compositor keeps up (``Compositor.stats``)."""

    frames: int
    """Program frames encoded since ``start``."""
    fps: float
    """Frames per second over the last ``FPS_WINDOW`` seconds of the clock (the output rate when keeping up)."""
    encode_seconds: float
    """Worker time spent composing and encoding, in total."""
    late_frames: int
    """Times the tick loop fell ``MAX_LAG`` behind and slowed the program's clock (overload)."""


class Compositor:
    """Composites ``slot_paths`` per ``layout`` into one H.264 + AAC program, handed to ``publish``.

    ``slate`` is what a slot shows while its source has nothing to show: a PyAV
    ``VideoFrame`` (any size or pixel format, letterboxed into the slot) or a
    callable returning one (called once, in a worker thread, by ``start``);
    ``None`` shows black. ``publish`` is called on the event loop with each
    packet, video (track 0) and audio (track 1) on the program's tracks.

    ``task`` is the tick loop (it ends only by ``stop`` or by raising); ``frames`` counts the
    frames made and ``encode_seconds`` the worker time spent composing and encoding them.
    Only the sources a layout shows are read and decoded (``single`` reads one) and mixed.
    """

    def __init__(
        self,
        hub: PathHub,
        slot_paths: Sequence[str],
        layout: Layout,
        output: OutputSettings,
        *,
        publish: Callable[[Packet], None],
        slate: Any | None = None,
    ) -> None:
        self.hub = hub
        self.output = output
        self.publish = publish
        self.width = max(2, output.width & ~1)  # 4:2:0 needs even sizes
        self.height = max(2, output.height & ~1)
        self.rate = max(1, output.fps)
        self.task: asyncio.Task[None] | None = None
        self.frames = 0
        self.encode_seconds = 0.0
        self.late_frames = 0
        self._slot_paths: tuple[str, ...] = tuple(slot_paths)
        self._layout = layout
        self._plan: list[tuple[Rect, Feed]] = []
        self._dirty = True
        self._feeds: dict[str, Feed] = {}
        self._keyframe = False
        self._pool: ThreadPoolExecutor | None = None
        self._video_encoder: Any = None
        self._audio_encoder: Any = None
        self._params = H264ParameterSets()
        self._black = _black(self.width, self.height)
        self._audio_samples = 0
        self._started = asyncio.Event()
        self._slate_source = slate
        self._slate: Any = None
        self._slate_scaler = Scaler()
        self._ticks: deque[float] = deque(maxlen=int(FPS_WINDOW * self.rate) + 1)

    def __repr__(self) -> str:
        return f"<Compositor {self._layout} {len(self._slot_paths)} sources frames={self.frames}>"

    # --- control (event loop) -----------------------------------------------------------------

    async def start(self) -> None:
        """Open the encoders and start the tick loop; returns once it runs."""
        # feeds decode while the tick encodes: one thread per source plus one for the tick
        self._pool = ThreadPoolExecutor(max_workers=MAX_PROGRAM_SOURCES + 1, thread_name_prefix="trax-compositor")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self._open_encoders)
        except BaseException:
            self._pool.shutdown(wait=False)
            self._pool = None
            raise
        self._reconcile()
        self.task = asyncio.create_task(self._run(), name="trax-compositor")
        await self._started.wait()

    async def stop(self) -> None:
        """Stop the tick loop and every feed; close the encoders."""
        tasks = [t for t in (self.task, *(f.task for f in self._feeds.values())) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._feeds.clear()
        self._plan = []
        if self._pool is not None:
            pool, self._pool = self._pool, None
            # a job still in a worker (cancelled awaits do not stop threads) finishes before the pool goes
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        self._video_encoder = self._audio_encoder = None  # libx264 holds its lookahead buffers until freed

    @property
    def fps(self) -> float:
        """The measured output frame rate (see :class:`CompositorStats`)."""
        ticks = tuple(self._ticks)
        if len(ticks) < 2 or ticks[-1] <= ticks[0]:
            return 0.0
        return (len(ticks) - 1) / (ticks[-1] - ticks[0])

    @property
    def stats(self) -> CompositorStats:
        return CompositorStats(self.frames, self.fps, self.encode_seconds, self.late_frames)

    def update(self, slot_paths: Sequence[str], layout: Layout) -> None:
        """New sources or layout, from the next frame on; the encoder (and its GOP) runs on."""
        self._slot_paths, self._layout = tuple(slot_paths), layout
        self._dirty = True

    def request_keyframe(self) -> None:
        """Make the next frame an IDR (a new viewer or destination needs one)."""
        self._keyframe = True

    # --- feeds (event loop) ---------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Make the plan (rect, feed) match the slots and layout; start and stop feeds to suit."""
        self._dirty = False
        rects = slots(self._layout, len(self._slot_paths), self.width, self.height)
        shown = self._slot_paths[: len(rects)]
        for path in set(self._feeds) - set(shown):  # hidden sources cost nothing
            feed = self._feeds.pop(path)
            if feed.task is not None:
                feed.task.cancel()
        for path in shown:
            if path not in self._feeds:
                feed = Feed(path)
                feed.task = asyncio.create_task(self._feed(feed), name=f"trax-compositor-feed-{path}")
                self._feeds[path] = feed
        self._plan = [(rect, self._feeds[path]) for rect, path in zip(rects, shown, strict=True)]

    async def _feed(self, feed: Feed) -> None:
        """Read and decode one source for as long as it is shown, reopening the reader when it goes."""
        while True:
            reader: Reader | None = None
            try:
                reader = self.hub.open_reader(feed.path, max_queue=READER_QUEUE)
                await self._read(feed, reader)
            except asyncio.CancelledError:
                raise
            except (Unavailable, Conflict) as exc:  # the hub is closing, or the path has too many readers
                log.info("compositor: cannot read %s (%s); retrying", feed.path, exc)
                await asyncio.sleep(STALE_AFTER)
            except Exception:
                log.exception("compositor: reading %s failed; retrying", feed.path)
                await asyncio.sleep(STALE_AFTER)
            finally:
                if reader is not None:
                    reader.close()
                feed.blank()

    async def _read(self, feed: Feed, reader: Reader) -> None:
        """Decode what ``reader`` brings until its publisher leaves or goes quiet for ``STALE_AFTER`` s."""
        tracks = await reader.tracks()  # waits for a publisher; the slot is black meanwhile
        if reader.publisher is not None and reader.publisher is feed.stale:
            # the same publisher that went quiet: its GOP replay is the picture that went stale
            reader.discard_queued()
            reader.request_keyframe()
        feed.stale = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, feed.open, tracks)
        last = time.monotonic()
        ended = False
        while not ended:
            await reader.wait(STALE_AFTER / 4)
            batch: list[Packet] = []
            try:
                while (packet := reader.get_nowait()) is not None:
                    batch.append(packet)
            except StopAsyncIteration:
                ended = True
            if batch:
                last = time.monotonic()
                await loop.run_in_executor(self._pool, feed.decode, batch)
            elif time.monotonic() - last > STALE_AFTER:
                log.info("compositor: %s sent nothing for %.0f s; reopening", feed.path, STALE_AFTER)
                feed.stale = reader.publisher
                return

    # --- the tick loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._started.set()
        start = time.monotonic()
        index = 0
        try:
            while True:
                lag = time.monotonic() - (start + index / self.rate)
                if lag < 0:
                    await asyncio.sleep(-lag)
                elif lag > MAX_LAG:
                    # overloaded: slow the program's clock down rather than jump its timestamps
                    self.late_frames += 1
                    start = time.monotonic() - index / self.rate
                if self._dirty:
                    self._reconcile()
                packets = await loop.run_in_executor(self._pool, self._render, index, list(self._plan))
                self._ticks.append(time.monotonic())
                for packet in packets:
                    self.publish(packet)
                index += 1
        finally:
            # on a crash too (the owner may drop us without ``stop``): no feed or worker outlives the loop
            for feed in self._feeds.values():
                if feed.task is not None:
                    feed.task.cancel()
            if self._pool is not None:
                self._pool.shutdown(wait=False)

    # --- codec work (worker thread) ----------------------------------------------------------------

    def _open_encoders(self) -> None:
        slate = self._slate_source() if callable(self._slate_source) else self._slate_source
        video = h264_encoder(self.width, self.height, self.rate, self.output.video_bitrate)
        audio = aac_encoder(self.output.audio_bitrate)
        self._video_encoder, self._audio_encoder, self._slate = video, audio, slate

    def _render(self, index: int, plan: list[tuple[Rect, Feed]]) -> list[Packet]:
        """Frame ``index`` of the program and the sound up to its time, encoded."""
        began = time.perf_counter()
        packets = self._encode_video(index, self._compose(plan))
        packets += self._encode_audio(index, plan)
        self.frames += 1
        self.encode_seconds += time.perf_counter() - began
        return packets

    def _compose(self, plan: list[tuple[Rect, Feed]]) -> npt.NDArray[np.uint8]:
        canvas = self._black.copy()
        y_plane, u_plane, v_plane = _planes(canvas, self.width, self.height)
        for rect, feed in plan:
            scaled = feed.scaled(rect)
            if scaled is None and self._slate is not None:
                scaled = self._slate_scaler.get(0, self._slate, rect)
            if scaled is None:
                continue
            box, (sy, su, sv) = scaled
            y_plane[box.y : box.y + box.h, box.x : box.x + box.w] = sy
            cx, cy, cw, ch = box.x // 2, box.y // 2, box.w // 2, box.h // 2
            u_plane[cy : cy + ch, cx : cx + cw] = su
            v_plane[cy : cy + ch, cx : cx + cw] = sv
        return canvas

    def _encode_video(self, index: int, canvas: npt.NDArray[np.uint8]) -> list[Packet]:
        import av

        frame = av.VideoFrame.from_ndarray(canvas, format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, self.rate)
        if self._keyframe:
            self._keyframe = False
            frame.pict_type = av.video.frame.PictureType.I
        out: list[Packet] = []
        for encoded in self._video_encoder.encode(frame):
            data, key = self._params.canonical(bytes(encoded))
            ts = int(encoded.pts) * 90000 // self.rate
            out.append(Packet(VIDEO, data, ts, ts, key))
        return out

    def _encode_audio(self, index: int, plan: list[tuple[Rect, Feed]]) -> list[Packet]:
        """Mix and encode every whole AAC frame that ends by the end of frame ``index``."""
        import av

        due = (index + 1) * AUDIO_RATE // self.rate
        feeds = list({id(feed): feed for _, feed in plan}.values())  # a source in two slots plays once
        out: list[Packet] = []
        while self._audio_samples + AAC_FRAME <= due:
            mix = np.zeros((AUDIO_CHANNELS, AAC_FRAME), dtype=np.float32)
            for feed in feeds:
                chunk = feed.audio.read(AAC_FRAME)
                if chunk is not None:
                    mix += chunk
            np.clip(mix, -1.0, 1.0, out=mix)
            frame = av.AudioFrame.from_ndarray(mix, format="fltp", layout="stereo")
            frame.sample_rate = AUDIO_RATE
            frame.pts = self._audio_samples
            self._audio_samples += AAC_FRAME
            for encoded in self._audio_encoder.encode(frame):
                if encoded.pts is None or encoded.pts < 0:
                    # the priming packet (pts -1024) is the encoder's delay: dropped, so the sound mixed for
                    # program time t plays at t, in step with the picture, instead of one AAC frame late
                    continue
                pts = int(encoded.pts)
                out.append(Packet(AUDIO, bytes(encoded), pts, pts, True))
        return out
