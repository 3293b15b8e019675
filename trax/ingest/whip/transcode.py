"""Media WebRTC cannot take as published, converted once per path and output codec, shared by every viewer.

Two cases: audio WebRTC cannot carry (AAC from RTMP/SRT) becomes Opus, and
video a viewer cannot play as is (H.264 with B-frames, as x264 and OBS
default to; HEVC; a codec the viewer's offer lacks) is re-encoded to H.264
constrained baseline or VP8.

A transcoder is itself a hub citizen: it reads the source path like any
reader and publishes one track on a derived path (``<path>#<codec>``) that
WHEP viewers read like any other. So the decode and the encode happen once
per path and output codec whatever the number of viewers, slow viewers get
the hub's usual treatment, a viewer's keyframe request reaches the encoder,
and the transcoder stops when its source leaves or when no viewer has read
it for ``linger`` seconds. Codec work runs in a worker thread, off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from fractions import Fraction
from typing import Any

from trax.ingest.hub import PathHub, Publisher
from trax.ingest.media import OPUS_TIME_BASE, RTP_VIDEO_TIME_BASE, Packet, Track, h264_is_keyframe, vp8_is_keyframe

log = logging.getLogger(__name__)

OPUS_TRACK = Track(0, "audio", "opus", OPUS_TIME_BASE, sample_rate=48000, channels=2)
ENCODERS = {"h264": "libx264", "vp8": "libvpx", "opus": "libopus"}
DECODERS = {"h264": "h264", "hevc": "hevc", "vp8": "vp8", "aac": "aac", "opus": "opus"}


def derived_path(path: str, codec: str) -> str:
    return f"{path}#{codec}"


class Transcoder:
    """Reads ``source`` from ``path`` and publishes it as ``target`` on ``derived_path(path, target)``."""

    def __init__(self, hub: PathHub, path: str, source: Track, target: str, *, linger: float = 10.0) -> None:
        self.hub = hub
        self.path = path
        self.source = source
        self.target = target
        self.derived = derived_path(path, target)
        self.linger = linger
        self.publisher: Publisher | None = None
        self.task: asyncio.Task[None] | None = None
        self._force_keyframe = False
        self._decoder: Any = None
        self._encoder: Any = None
        self._resampler: Any = None
        self._pts: int | None = None

    @property
    def output(self) -> Track:
        if self.target == "opus":
            return OPUS_TRACK
        return Track(0, "video", self.target, RTP_VIDEO_TIME_BASE, width=self.source.width, height=self.source.height)  # type: ignore[arg-type]

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def start(self) -> None:
        self.publisher = await self.hub.open_publisher(self.derived, "transcode", [self.output])
        self.publisher.on_keyframe_request = self._request_keyframe
        self.task = asyncio.create_task(self._run(), name=f"trax-transcode-{self.derived}")

    def _request_keyframe(self) -> None:
        self._force_keyframe = True

    async def _run(self) -> None:
        assert self.publisher is not None
        loop = asyncio.get_running_loop()
        try:
            idle_since: float | None = None
            async with self.hub.open_reader(self.path, max_queue=500) as reader:
                await reader.tracks(wait=5)
                if self.source.kind == "video":
                    reader.request_keyframe()  # a decoder starts on a keyframe
                async for packet in reader:
                    if packet.track != self.source.index:
                        continue
                    for out in await loop.run_in_executor(None, self._convert, packet):
                        self.publisher.send(out)
                    if self.publisher.readers:
                        idle_since = None
                    elif idle_since is None:
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since > self.linger:
                        log.info("%s: no viewer needs %s any more; transcoder stops", self.path, self.target)
                        break
        except Exception as exc:
            # the derived path has no Source to mark: its viewers lose this track, not their session
            log.warning("%s: transcoding %s to %s failed: %s", self.path, self.source.codec, self.target, exc)
        finally:
            with contextlib.suppress(Exception):
                await self.publisher.close()

    # --- codec work (worker thread) ---------------------------------------------------

    def _open(self) -> None:
        import av

        self._decoder = av.CodecContext.create(DECODERS[self.source.codec], "r")
        if self.source.extradata:
            self._decoder.extradata = self.source.extradata
        enc: Any = av.CodecContext.create(ENCODERS[self.target], "w")
        if self.target == "opus":
            enc.sample_rate, enc.layout, enc.format = 48000, "stereo", "s16"
            enc.time_base = OPUS_TIME_BASE
            enc.bit_rate = 96000
            enc.open()
            self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000, frame_size=enc.frame_size)
        self._encoder = enc

    def _open_video_encoder(self, width: int, height: int) -> None:
        enc = self._encoder
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.time_base = RTP_VIDEO_TIME_BASE
        enc.framerate = Fraction(30)  # rate control assumes 1/time_base fps otherwise
        enc.bit_rate = 2_000_000
        if self.target == "h264":
            # what WebRTC passthrough needs: constrained baseline, no B-frames, no lookahead
            enc.options = {"profile": "baseline", "preset": "veryfast", "tune": "zerolatency", "g": "120"}
        else:
            enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "g": "120"}
        enc.open()

    def _convert(self, packet: Packet) -> list[Packet]:
        import av

        if self._decoder is None:
            self._open()
        src = av.Packet(packet.data)
        src.pts, src.dts, src.time_base = packet.pts, packet.dts, self.source.time_base
        try:
            frames = self._decoder.decode(src)
        except av.FFmpegError:
            return []  # one bad access unit costs one frame
        out: list[Packet] = []
        for frame in frames:
            if self.target == "opus":
                out += self._encode_audio(frame, packet)
            else:
                out += self._encode_video(frame)
        return out

    def _encode_audio(self, frame: Any, packet: Packet) -> list[Packet]:
        if self._pts is None:
            self._pts = int(packet.pts * self.source.time_base / OPUS_TIME_BASE)
        frame.pts = None  # pts are re-made from the first packet; the encoder's own are not needed
        out = []
        for chunk in self._resampler.resample(frame):
            for p in self._encoder.encode(chunk):
                out.append(Packet(0, bytes(p), self._pts, self._pts, True))
                self._pts += self._encoder.frame_size
        return out

    def _encode_video(self, frame: Any) -> list[Packet]:
        import av

        if not self._encoder.is_open:
            self._open_video_encoder(frame.width, frame.height)
        pts = None if frame.pts is None else int(frame.pts * self.source.time_base / RTP_VIDEO_TIME_BASE)
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = pts, RTP_VIDEO_TIME_BASE
        if self._force_keyframe:
            self._force_keyframe = False
            frame.pict_type = av.video.frame.PictureType.I
        else:
            frame.pict_type = av.video.frame.PictureType.NONE
        out = []
        for p in self._encoder.encode(frame):
            data = bytes(p)
            key = h264_is_keyframe(data) if self.target == "h264" else vp8_is_keyframe(data)
            pts = int(p.pts) if p.pts is not None else 0
            out.append(Packet(0, data, pts, pts, key))
        return out


class Transcoders:
    """At most one transcoder per path and output codec."""

    def __init__(self, hub: PathHub) -> None:
        self.hub = hub
        self._running: dict[tuple[str, str], Transcoder] = {}
        self._lock = asyncio.Lock()

    def active(self) -> list[tuple[str, str]]:
        return [key for key, t in self._running.items() if t.running]

    async def derive(self, path: str, source: Track, target: str) -> tuple[str, Track]:
        """The derived path and track carrying ``source`` as ``target`` (starting the transcoder if needed)."""
        async with self._lock:
            current = self._running.get((path, target))
            if current is None or not current.running or current.source != source:
                if current is not None:
                    await self._stop(current)
                current = Transcoder(self.hub, path, source, target)
                await current.start()
                self._running[(path, target)] = current
            return current.derived, current.output

    async def _stop(self, t: Transcoder) -> None:
        if t.task is not None:
            t.task.cancel()
            with contextlib.suppress(BaseException):
                await t.task
        if t.publisher is not None:
            await t.publisher.close()

    async def close(self) -> None:
        for t in list(self._running.values()):
            await self._stop(t)
        self._running.clear()
