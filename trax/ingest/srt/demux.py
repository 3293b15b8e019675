"""MPEG-TS in, canonical tracks and packets out (PyAV's demuxer; runs in the caller's thread).

The source is any object with a blocking ``read(n) -> bytes`` (``b""`` at the
end). PyAV is imported when a demuxer is built, never at module import.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, Protocol

from trax.ingest.media import Codec, H264ParameterSets, Packet, Track
from trax.ingest.srt import adts
from trax.ingest.srt.hevc import HevcParameterSets

log = logging.getLogger(__name__)

SUPPORTED = {"video": ("h264", "hevc"), "audio": ("aac", "opus")}
_CODECS: dict[str, Codec] = {"h264": "h264", "hevc": "hevc", "aac": "aac", "opus": "opus"}
MAX_PROBE_PACKETS = 2000
"""Packets read while waiting for every kept stream's first packet (a stream that never sends one is dropped)."""


class ByteSource(Protocol):
    def read(self, size: int = -1) -> bytes: ...


class DemuxError(Exception):
    """The input is not MPEG-TS with a supported codec."""


class DemuxEnded(DemuxError):
    """The input ended before its tracks were found: a caller that left (its own input ran dry), no fault."""


class _Kept:
    """One input stream that becomes a hub track."""

    def __init__(self, stream: Any, kind: str, codec: str) -> None:
        self.stream = stream
        self.kind = kind
        self.codec = codec
        self.time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        self.params = H264ParameterSets()
        self.hevc = HevcParameterSets()
        self.asc: bytes | None = None
        self.sample_rate: int | None = None
        self.channels: int | None = None
        self.opus_head: bytes | None = None
        self.next_pts: int | None = None
        self.aac_steps: dict[int, int] = {}
        self.index = -1
        extradata = stream.codec_context.extradata
        if extradata and codec == "h264":
            self.params.canonical(bytes(extradata))  # remember SPS/PPS the probe found
        elif extradata and codec == "hevc":
            self.hevc.canonical(bytes(extradata))
        elif codec == "opus":
            self.opus_head = bytes(extradata) if extradata else None
            self.sample_rate = 48000  # Opus always decodes at 48 kHz (RFC 7845 5.1)
            if self.opus_head and len(self.opus_head) > 9:
                self.channels = self.opus_head[9]


class TsDemuxer:
    """``open()`` probes and returns the tracks; ``packets()`` yields the rest of the stream."""

    def __init__(self, source: ByteSource, *, probe_bytes: int = 500_000, analyze_us: int = 500_000) -> None:
        self._source = source
        self._probe_bytes = probe_bytes
        self._analyze_us = analyze_us
        self._container: Any = None
        self._kept: dict[int, _Kept] = {}
        self._pending: list[tuple[_Kept, Any]] = []
        self._iter: Iterator[Any] | None = None
        self.tracks: list[Track] = []
        self.received: dict[int, int] = {}
        """Packets handed out per track index."""

    def open(self) -> list[Track]:
        import av

        try:
            self._container = av.open(
                self._source,
                mode="r",
                format="mpegts",
                options={"analyzeduration": str(self._analyze_us), "probesize": str(self._probe_bytes)},
                buffer_size=64 * 1316,
            )
        except EOFError:  # PyAV's EOFError: nothing (or too little to probe) came before the end
            raise DemuxEnded("the stream ended before any media") from None
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise DemuxError(f"not an MPEG-TS stream ({type(exc).__name__})") from None
        for stream in self._container.streams:
            name = stream.codec_context.name if stream.codec_context is not None else None
            if stream.type in SUPPORTED and name in SUPPORTED[stream.type]:
                self._kept[stream.index] = _Kept(stream, stream.type, name)
            else:
                log.info("SRT input: ignoring %s stream %s (%s)", stream.type, stream.index, name)
        if not self._kept:
            self.close()
            raise DemuxError("the stream has no H.264/HEVC video or AAC audio")
        self._iter = iter(self._container.demux(*[k.stream for k in self._kept.values()]))
        waiting = set(self._kept)
        for _ in range(MAX_PROBE_PACKETS):
            if not waiting:
                break
            raw = self._next_raw()
            if raw is None:
                break
            kept = self._kept[raw.stream.index]
            if kept.codec == "aac" and kept.asc is None:
                try:
                    frame = adts.parse_header(bytes(raw))
                except adts.AdtsError:
                    continue
                kept.asc = frame.audio_specific_config()
                kept.sample_rate = frame.sample_rate
                kept.channels = frame.channel_config or None
            waiting.discard(raw.stream.index)
            self._pending.append((kept, raw))
        for idx in sorted(waiting):  # announced but silent (or unparsable): not a track
            del self._kept[idx]
        self._pending = [(k, raw) for k, raw in self._pending if raw.stream.index in self._kept]
        if not self._kept:
            self.close()
            raise DemuxError("no media arrived while probing the stream")
        for i, kept in enumerate(sorted(self._kept.values(), key=lambda k: (k.kind != "video", k.stream.index))):
            kept.index = i
            cc = kept.stream.codec_context
            self.tracks.append(
                Track(
                    index=i,
                    kind="video" if kept.kind == "video" else "audio",
                    codec=_CODECS[kept.codec],
                    time_base=kept.time_base,
                    extradata=kept.asc if kept.codec == "aac" else kept.opus_head,
                    width=(cc.width or None) if kept.kind == "video" else None,
                    height=(cc.height or None) if kept.kind == "video" else None,
                    sample_rate=kept.sample_rate,
                    channels=kept.channels,
                )
            )
            self.received[i] = 0
        return list(self.tracks)

    def _next_raw(self) -> Any:
        import av

        assert self._iter is not None
        while True:
            try:
                raw = next(self._iter)
            except StopIteration:
                return None
            except (av.FFmpegError, OSError, ValueError) as exc:
                log.info("SRT input: demuxing stopped (%s)", type(exc).__name__)
                return None
            if raw.size and raw.stream_index in self._kept:
                return raw

    def packets(self) -> Iterator[Packet]:
        """Canonical packets until the source ends or the data stops being MPEG-TS."""
        while True:
            if self._pending:
                kept, raw = self._pending.pop(0)
            else:
                raw = self._next_raw()
                if raw is None:
                    return
                kept = self._kept.get(raw.stream_index)  # type: ignore[assignment]
                if kept is None:
                    continue
            packet = self._convert(kept, raw)
            if packet is not None:
                self.received[packet.track] += 1
                yield packet

    def _convert(self, kept: _Kept, raw: Any) -> Packet | None:
        data = bytes(raw)
        pts = raw.pts if raw.pts is not None else raw.dts
        dts = raw.dts if raw.dts is not None else pts
        if kept.codec == "aac":
            try:
                frame, data = adts.strip(data)
            except adts.AdtsError:
                return None
            # a PES holds several ADTS frames but one timestamp: the parser leaves the rest unstamped
            step = kept.aac_steps.get(frame.sample_rate)
            if step is None:
                step = kept.aac_steps[frame.sample_rate] = round(Fraction(1024, frame.sample_rate) / kept.time_base)
            if pts is None:
                if kept.next_pts is None:
                    return None
                pts = dts = kept.next_pts
            kept.next_pts = pts + step
            return Packet(track=kept.index, data=data, pts=pts, dts=dts, keyframe=True)
        if kept.codec == "opus":  # raw Opus packets (the demuxer strips MPEG-TS's control headers)
            if pts is None:
                if kept.next_pts is None:
                    return None
                pts = dts = kept.next_pts
            step = raw.duration or round(Fraction(20, 1000) / kept.time_base)
            kept.next_pts = pts + step
            return Packet(track=kept.index, data=data, pts=pts, dts=dts, keyframe=True)
        if pts is None or dts is None:
            return None
        keyframe = bool(raw.is_keyframe)
        if keyframe:
            # only keyframes need parameter sets in front (the parser flags them); scanning every frame costs
            params = kept.params if kept.codec == "h264" else kept.hevc
            data, irap = params.canonical(data)
            keyframe = irap or keyframe
        return Packet(track=kept.index, data=data, pts=pts, dts=dts, keyframe=keyframe)

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # closing a half-read input: nothing left to save
                log.debug("closing the MPEG-TS demuxer failed", exc_info=True)
            self._container = None
