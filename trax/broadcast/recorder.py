"""Record a hub path (the studio program) into a fragmented MP4 file, without re-encoding.

The file is written as ``frag_keyframe+empty_moov+default_base_moof`` MP4: a
header up front, then self-contained fragments of roughly ``fragment_seconds``
that each start on a keyframe. Every fragment is flushed and fsynced as soon
as the muxer hands it over, so a process killed with SIGKILL loses at most the
fragment being built and the file stays playable.

Muxing runs in a worker thread fed by a bounded queue, off the event loop.
The recording starts on the first video keyframe (whose SPS/PPS become the
H.264 extradata; the mp4 muxer turns Annex B extradata and packets into avcC
form itself) and drops packets whose dts does not increase, which the muxer
would refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from trax.ingest.hub import PathHub, Reader
from trax.ingest.media import H264_PPS, H264_SPS, Packet, Track, annexb, iter_annexb_nals

log = logging.getLogger(__name__)

QUEUE_PACKETS = 1000
"""About 10 s of program; the hub's own reader queue absorbs bursts beyond it."""
_STOP = object()


@dataclass(frozen=True)
class RecordingResult:
    size_bytes: int
    sha256: str
    duration_seconds: float | None
    """Last minus first video dts, or ``None`` when no video was recorded."""


class _SyncedFile:
    """The muxer's output: every write goes to the file at once and is fsynced (one write per fragment)."""

    def __init__(self, file: Path) -> None:
        self._fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.size = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        # the AVIO buffer is flushed once per muxed packet (flush_packets) and the fragmented muxer
        # only emits bytes when a fragment is complete, so this is one fsync per fragment
        os.fsync(self._fd)
        self.size += len(data)
        return len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _Mp4Writer:
    """The worker thread's side: a fragmented MP4 muxer over canonical packets."""

    def __init__(self, file: Path, fragment_seconds: float) -> None:
        self.file = file
        self.fragment_seconds = fragment_seconds
        self._sink = _SyncedFile(file)
        self._container: Any = None
        self._streams: dict[int, tuple[Track, Any]] = {}
        self._tracks: dict[int, Track] = {}
        self._last_dts: dict[int, int] = {}
        self._video: Track | None = None
        self.first_video: float | None = None
        self.last_video: float | None = None
        self.written = 0
        self.dropped = 0

    def set_tracks(self, tracks: tuple[Track, ...]) -> None:
        """The tracks of the (next) publisher; a file keeps the tracks it was opened with."""
        self._tracks = {t.index: t for t in tracks if t.codec in ("h264", "aac")}
        if self._video is None:
            self._video = next((t for t in self._tracks.values() if t.kind == "video"), None)

    def write(self, packet: Packet) -> None:
        track = self._tracks.get(packet.track)
        if track is None:
            return
        if self._container is None:
            if not self._can_open(track, packet):
                self.dropped += 1
                return
            self._open(packet)
        entry = self._streams.get(packet.track)
        if entry is None:
            return
        last = self._last_dts.get(packet.track)
        if last is not None and packet.dts <= last:  # the muxer refuses non-increasing dts
            self.dropped += 1
            return
        self._mux(entry[0], entry[1], packet)
        self._last_dts[packet.track] = packet.dts

    def _can_open(self, track: Track, packet: Packet) -> bool:
        """A file starts on a video keyframe (on any packet when the path has no video)."""
        if self._video is None:
            return True
        return track.index == self._video.index and packet.keyframe

    def _open(self, first: Packet) -> None:
        import av

        # PyAV cannot set extradata on a stream made by add_mux_stream; a stream copied from a template
        # codec context (never opened: nothing is re-encoded) carries it into the muxer.
        templates: Any = av.open(io.BytesIO(), "w", format="mp4")
        self._container = av.open(
            self._sink,
            "w",
            format="mp4",
            container_options={
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "min_frag_duration": str(int(self.fragment_seconds * 1_000_000)),
                "flush_packets": "1",
            },
        )
        for track in self._tracks.values():
            if track.kind == "video":
                template = templates.add_stream("libx264")
                template.codec_context.width = track.width or 0
                template.codec_context.height = track.height or 0
                extradata = _parameter_sets(first.data) if track.index == first.track else b""
            else:
                if not track.extradata:
                    log.info("recorder: AAC track %d has no AudioSpecificConfig; left out", track.index)
                    continue
                template = templates.add_stream("aac", rate=track.sample_rate or 48000)
                extradata = track.extradata
            stream = self._container.add_stream_from_template(template, opaque=True)
            stream.codec_context.extradata = extradata
            stream.time_base = track.time_base
            self._streams[track.index] = (track, stream)
        templates.close()

    def _mux(self, track: Track, stream: Any, packet: Packet) -> None:
        import av

        out = av.Packet(packet.data)
        out.stream = stream
        out.time_base = track.time_base
        out.pts, out.dts = packet.pts, packet.dts
        out.is_keyframe = packet.keyframe
        try:
            self._container.mux(out)
        except (av.FFmpegError, ValueError) as exc:
            self.dropped += 1
            log.debug("recorder: a packet could not be muxed (%s)", type(exc).__name__)
            return
        self.written += 1
        if track.kind == "video":
            t = float(packet.dts * track.time_base)
            self.first_video = t if self.first_video is None else self.first_video
            self.last_video = t

    def close(self) -> None:
        try:
            if self._container is not None:
                self._container.close()
        except Exception:
            log.warning("recorder: the last fragment of %s could not be written", self.file.name, exc_info=True)
        finally:
            self._sink.close()

    @property
    def duration(self) -> float | None:
        if self.first_video is None or self.last_video is None:
            return None
        return max(0.0, self.last_video - self.first_video)


def _parameter_sets(keyframe: bytes) -> bytes:
    """The SPS/PPS of a canonical keyframe, as Annex B extradata."""
    return annexb([nal for nal in iter_annexb_nals(keyframe) if nal[0] & 0x1F in (H264_SPS, H264_PPS)])


def _file_digest(file: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    try:
        with file.open("rb") as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        pass
    return size, digest.hexdigest()


class Recorder:
    """Records ``path`` of ``hub`` into ``file`` until ``stop()``; follows the path across publisher restarts."""

    def __init__(self, hub: PathHub, path: str, file: Path, *, fragment_seconds: float = 2.0) -> None:
        self.hub = hub
        self.path = path
        self.file = file
        self.fragment_seconds = fragment_seconds
        self._queue: queue.Queue[Packet | tuple[Track, ...] | object] = queue.Queue(maxsize=QUEUE_PACKETS)
        self._writer: _Mp4Writer | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._reader: Reader | None = None
        self._result: RecordingResult | None = None
        self._shift: dict[int, int] = {}
        self._last_seconds: float | None = None

    async def start(self) -> None:
        """Create the file and start following the path (which may have no publisher yet)."""
        self._writer = await asyncio.to_thread(_Mp4Writer, self.file, self.fragment_seconds)
        self._thread = threading.Thread(target=self._work, name=f"trax-recorder-{self.file.name}", daemon=True)
        self._thread.start()
        self._task = asyncio.create_task(self._follow(), name=f"trax-recorder-{self.path}")

    async def stop(self) -> RecordingResult:
        """Finish the file (the last fragment and the trailer) and describe it."""
        if self._result is not None:
            return self._result
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._reader is not None:
            self._reader.close()
        duration: float | None = None
        if self._thread is not None and self._writer is not None:
            await asyncio.to_thread(self._queue.put, _STOP)
            await asyncio.to_thread(self._thread.join)
            duration = self._writer.duration
            log.info(
                "recorder %s: %d packets written, %d dropped", self.path, self._writer.written, self._writer.dropped
            )
        size, sha = await asyncio.to_thread(_file_digest, self.file)
        self._result = RecordingResult(size, sha, duration)
        return self._result

    # --- event loop side ---------------------------------------------------------------

    async def _follow(self) -> None:
        """Read the path, one publisher after another, until stopped."""
        while True:
            reader = self._reader = self.hub.open_reader(self.path, max_queue=2000)
            try:
                tracks = await reader.tracks()
            except Exception:  # the path ended before a publisher came (hub closing)
                reader.close()
                await asyncio.sleep(0.5)
                continue
            await self._put(tracks)
            async with reader:
                first = True
                async for packet in reader:
                    if first:
                        self._continue_from(packet, tracks)
                        first = False
                    await self._put(self._shifted(packet, tracks))

    def _continue_from(self, packet: Packet, tracks: tuple[Track, ...]) -> None:
        """A new publisher restarts its clock: shift it so the file's timestamps keep increasing."""
        track = next((t for t in tracks if t.index == packet.track), None)
        if track is None:
            return
        start = float(packet.dts * track.time_base)
        if self._last_seconds is None or start > self._last_seconds:
            self._shift = {}
            return
        gap = self._last_seconds - start + 0.04  # one frame after the last thing recorded
        self._shift = {t.index: round(Fraction(gap) / t.time_base) for t in tracks}

    def _shifted(self, packet: Packet, tracks: tuple[Track, ...]) -> Packet:
        shift = self._shift.get(packet.track, 0)
        track = next((t for t in tracks if t.index == packet.track), None)
        if track is not None:
            self._last_seconds = max(self._last_seconds or 0.0, float((packet.dts + shift) * track.time_base))
        if not shift:
            return packet
        return Packet(packet.track, packet.data, packet.pts + shift, packet.dts + shift, packet.keyframe)

    async def _put(self, item: Packet | tuple[Track, ...]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:  # the disk is slow: wait for room (the hub drops for us if this lasts)
            await asyncio.to_thread(self._queue.put, item)

    # --- worker thread -----------------------------------------------------------------

    def _work(self) -> None:
        writer = self._writer
        assert writer is not None
        failed = False
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                if failed:  # keep draining so the reading side never blocks on a full queue
                    continue
                try:
                    if isinstance(item, Packet):
                        writer.write(item)
                    elif isinstance(item, tuple):
                        writer.set_tracks(item)
                except Exception:
                    failed = True
                    log.exception("recorder %s: writing %s failed; the rest is not recorded", self.path, self.file.name)
        finally:
            writer.close()
