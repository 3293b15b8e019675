"""Canonical tracks and packets in, MPEG-TS out (PyAV's muxer, no re-encoding).

Output is written in 1316-byte pieces (seven TS packets, one SRT live
message each) to a ``write(bytes)`` callable. Tracks MPEG-TS cannot carry
(VP8) are left out; Opus is muxed as ffmpeg does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from trax.ingest.media import Packet, Track
from trax.ingest.srt import adts
from trax.ingest.srt.libsrt import TS_PAYLOAD

log = logging.getLogger(__name__)

MUXABLE = ("h264", "hevc", "aac", "opus")


class _Sink:
    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write

    def write(self, data: bytes) -> int:
        self._write(bytes(data))
        return len(data)


class TsMuxer:
    def __init__(self, tracks: list[Track], write: Callable[[bytes], None]) -> None:
        import av

        self._container: Any = av.open(
            _Sink(write),
            mode="w",
            format="mpegts",
            # an AVIO buffer of one SRT payload: every write is one message, nothing waits for more data
            buffer_size=TS_PAYLOAD,
            container_options={"max_interleave_delta": "500000"},
        )
        self._streams: dict[int, tuple[Track, Any]] = {}
        for track in tracks:
            if track.codec not in MUXABLE:
                log.info("SRT reader: track %d (%s) cannot go into MPEG-TS; left out", track.index, track.codec)
                continue
            if track.kind == "video":
                stream = self._container.add_mux_stream(track.codec, width=track.width or 0, height=track.height or 0)
            elif track.codec == "opus":
                # MPEG-TS describes Opus by its channel count, which a stream without a codec context
                # cannot carry; an (idle) Opus encoder context supplies it. Packets are never re-encoded.
                layout = "mono" if track.channels == 1 else "stereo"
                stream = self._container.add_stream("libopus", rate=48000, layout=layout)
            else:
                stream = self._container.add_mux_stream(track.codec, rate=track.sample_rate)
            stream.time_base = track.time_base
            self._streams[track.index] = (track, stream)
        self.sent = 0
        self.dropped = 0
        self._last_dts: dict[int, int] = {}

    @property
    def track_count(self) -> int:
        return len(self._streams)

    def send(self, packet: Packet) -> None:
        import av

        entry = self._streams.get(packet.track)
        if entry is None:
            return
        track, stream = entry
        data = packet.data
        if track.codec == "aac":
            if not track.extradata:
                self.dropped += 1
                return
            try:
                data = adts.header_for(track.extradata, len(data)) + data
            except adts.AdtsError:
                self.dropped += 1
                return
        last = self._last_dts.get(packet.track)
        if last is not None and packet.dts <= last:  # the muxer refuses non-increasing DTS
            self.dropped += 1
            return
        out = av.Packet(data)
        out.stream = stream
        out.time_base = track.time_base
        out.pts = packet.pts
        out.dts = packet.dts
        out.is_keyframe = packet.keyframe
        try:
            self._container.mux(out)
        except (av.FFmpegError, ValueError) as exc:
            self.dropped += 1
            log.debug("SRT reader: a packet could not be muxed (%s)", type(exc).__name__)
            return
        self._last_dts[packet.track] = packet.dts
        self.sent += 1

    def close(self) -> None:
        try:
            self._container.close()
        except Exception:  # the peer may be gone while the trailer is written
            log.debug("closing the MPEG-TS muxer failed", exc_info=True)
