"""Audio WebRTC cannot carry (AAC from RTMP/SRT) as Opus: transcoded once per path, shared by every viewer.

The transcoder is itself a hub citizen: it reads the source path like any
reader and publishes the Opus track on a derived path (``<path>#opus``) that
WHEP viewers read like any other. So the decode and the encode happen once
per path whatever the number of viewers, slow viewers are handled by the
hub's usual queues, and the transcoder stops when its source leaves or when
no viewer has been reading it for ``linger`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from trax.ingest.hub import PathHub, Publisher
from trax.ingest.media import OPUS_TIME_BASE, Packet, Track

log = logging.getLogger(__name__)

OPUS_SUFFIX = "#opus"
OPUS_TRACK = Track(0, "audio", "opus", OPUS_TIME_BASE, sample_rate=48000, channels=2)


class OpusTranscoder:
    def __init__(self, hub: PathHub, path: str, source: Track, *, linger: float = 10.0) -> None:
        self.hub = hub
        self.path = path
        self.derived = path + OPUS_SUFFIX
        self.source = source
        self.linger = linger
        self.publisher: Publisher | None = None
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self.publisher = await self.hub.open_publisher(self.derived, "transcode", [OPUS_TRACK])
        self.task = asyncio.create_task(self._run(), name=f"trax-opus-{self.path}")

    async def _run(self) -> None:
        import av

        assert self.publisher is not None
        try:
            decoder = av.CodecContext.create(self.source.codec, "r")
            if self.source.extradata:
                decoder.extradata = self.source.extradata
            encoder = av.CodecContext.create("libopus", "w")
            encoder.sample_rate = 48000
            encoder.layout = "stereo"
            encoder.format = "s16"
            encoder.time_base = OPUS_TIME_BASE
            encoder.bit_rate = 96000
            encoder.open()
            resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000, frame_size=encoder.frame_size)
            pts: int | None = None
            idle_since: float | None = None
            async with self.hub.open_reader(self.path, max_queue=500) as reader:
                await reader.tracks(wait=5)
                async for packet in reader:
                    if packet.track != self.source.index:
                        continue
                    if pts is None:
                        pts = int(packet.pts * self.source.time_base / OPUS_TIME_BASE)
                    for out in self._transcode(decoder, resampler, encoder, packet):
                        self.publisher.send(Packet(0, out, pts, pts, True))
                        pts += encoder.frame_size
                    if self.publisher.readers:
                        idle_since = None
                    elif idle_since is None:
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since > self.linger:
                        log.info("%s: no WHEP viewer needs Opus any more; transcoder stops", self.path)
                        break
        except Exception as exc:
            # the derived path has no Source to mark: its viewers just lose audio
            log.warning("%s: %s to Opus transcoding failed: %s", self.path, self.source.codec, type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                await self.publisher.close()

    def _transcode(self, decoder: Any, resampler: Any, encoder: Any, packet: Packet) -> list[bytes]:
        import av

        src = av.Packet(packet.data)
        src.pts = packet.pts
        src.dts = packet.dts
        src.time_base = self.source.time_base
        out: list[bytes] = []
        try:
            frames = decoder.decode(src)
        except av.FFmpegError:
            return out  # one bad access unit costs one frame of audio
        for frame in frames:
            frame.pts = None  # the encoder's own counter; pts are re-made from the first packet
            for chunk in resampler.resample(frame):
                out += [bytes(p) for p in encoder.encode(chunk)]
        return out

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


class Transcoders:
    """At most one Opus transcoder per path."""

    def __init__(self, hub: PathHub) -> None:
        self.hub = hub
        self._by_path: dict[str, OpusTranscoder] = {}
        self._lock = asyncio.Lock()

    async def opus_path(self, path: str, source: Track) -> str:
        """The derived path carrying ``source`` as Opus (starting the transcoder if needed)."""
        async with self._lock:
            current = self._by_path.get(path)
            if current is None or not current.running or current.source != source:
                if current is not None:
                    await self._stop(current)
                current = OpusTranscoder(self.hub, path, source)
                await current.start()
                self._by_path[path] = current
            return current.derived

    async def _stop(self, t: OpusTranscoder) -> None:
        if t.task is not None:
            t.task.cancel()
            with contextlib.suppress(BaseException):
                await t.task
        if t.publisher is not None:
            await t.publisher.close()

    async def close(self) -> None:
        for t in list(self._by_path.values()):
            await self._stop(t)
        self._by_path.clear()
