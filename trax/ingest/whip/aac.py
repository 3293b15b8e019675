"""AAC for the RTMP (and SRT) readers of a WHIP publisher, whose audio is Opus.

FLV carries no Opus, so without this an RTMP player of a browser guest gets video only. The WHIP publisher's
hub path carries a second audio track, AAC, made here from its Opus packets: once per path, in the publisher's
own session, however many readers there are. WHEP viewers keep the Opus track (the first audio track); FLV egress
takes the AAC one. Nothing is encoded while the path has no reader.

The work is small (a 20 ms Opus frame decodes and re-encodes in well under a millisecond), so it runs where the
Opus packets arrive, on the event loop, in order with the video.
"""

from __future__ import annotations

import logging
from typing import Any

from trax.ingest.media import OPUS_TIME_BASE, Packet, Track

log = logging.getLogger(__name__)

AAC_BIT_RATE = 128_000


class OpusToAac:
    """Decodes one Opus track and encodes AAC-LC 48 kHz stereo; ``track`` is the hub track it publishes as."""

    def __init__(self, index: int) -> None:
        import av

        self._decoder: Any = av.CodecContext.create("opus", "r")
        self._decoder.sample_rate, self._decoder.layout = 48000, "stereo"
        enc: Any = av.CodecContext.create("aac", "w")
        enc.sample_rate, enc.layout, enc.format = 48000, "stereo", "fltp"
        enc.time_base = OPUS_TIME_BASE
        enc.bit_rate = AAC_BIT_RATE
        enc.open()
        self._encoder = enc
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000, frame_size=enc.frame_size)
        self._pts: int | None = None
        self.failed = False
        # the AudioSpecificConfig, which FLV sends ahead of the first AAC frame
        self.track = Track(
            index, "audio", "aac", OPUS_TIME_BASE, bytes(enc.extradata or b""), sample_rate=48000, channels=2
        )

    def pause(self) -> None:
        """No reader: stop encoding; timestamps restart from the next Opus packet."""
        self._pts = None

    def convert(self, packet: Packet) -> list[Packet]:
        import av

        if self.failed:
            return []
        src = av.Packet(packet.data)
        src.pts, src.time_base = packet.pts, OPUS_TIME_BASE
        try:
            frames = self._decoder.decode(src)
            if self._pts is None:
                self._pts = packet.pts
            out: list[Packet] = []
            for frame in frames:
                frame.pts = None  # re-stamped from the Opus clock below
                for chunk in self._resampler.resample(frame):
                    for p in self._encoder.encode(chunk):
                        out.append(Packet(self.track.index, bytes(p), self._pts, self._pts, True))
                        self._pts += self._encoder.frame_size
            return out
        except av.FFmpegError as exc:
            # a corrupt Opus frame costs 20 ms; a broken encoder costs the AAC track, never the session
            log.debug("Opus to AAC: %s", exc)
            return []
        except Exception:
            self.failed = True
            log.exception("Opus to AAC failed; RTMP readers of this path get no audio")
            return []
