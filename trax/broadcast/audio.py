"""Audio the program cannot forward as it is, made into the program's AAC (48 kHz stereo).

A passthrough program forwards AAC that already has the program's
configuration untouched. Anything else (Opus from a WHIP guest, AAC at
44.1 kHz or mono from an encoder) is decoded, resampled and encoded here,
once, whatever the number of destinations. An AAC frame costs tens of
microseconds to decode and encode, so this runs inline on the program's task.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

from trax.broadcast.encoders import aac_encoder
from trax.broadcast.tracks import AAC_FRAME, AAC_LC_48K_STEREO, AUDIO_RATE
from trax.ingest.media import Packet, Track

log = logging.getLogger(__name__)

DECODERS = {"aac": "aac", "opus": "opus"}


def _asc_fields(extradata: bytes) -> tuple[int, int, int] | None:
    """(object type, sampling frequency index, channel configuration) of an AudioSpecificConfig."""
    if len(extradata) < 2:
        return None
    b0, b1 = extradata[0], extradata[1]
    return b0 >> 3, ((b0 & 0x07) << 1) | (b1 >> 7), (b1 >> 3) & 0x0F


PROGRAM_ASC = _asc_fields(AAC_LC_48K_STEREO)


def forwardable(track: Track) -> bool:
    """Whether ``track``'s packets can go into the program's audio track as they are.

    What must match is what a decoder is set up with (AAC-LC, 48 kHz, stereo); trailing
    extension bytes some encoders add (ffmpeg's explicit SBR signalling) change nothing.
    """
    return track.codec == "aac" and track.extradata is not None and _asc_fields(track.extradata) == PROGRAM_ASC


class AudioConformer:
    """Decodes one source audio track and re-encodes it as the program's AAC; ``push`` → [(pts seconds, data)]."""

    def __init__(self, track: Track, bitrate: int) -> None:
        import av

        self.track = track
        decoder: Any = av.CodecContext.create(DECODERS[track.codec], "r")
        if track.extradata:
            decoder.extradata = track.extradata
        if track.sample_rate:
            decoder.sample_rate = track.sample_rate
        self._decoder = decoder
        self._resampler: Any = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        self._fifo: Any = av.AudioFifo()
        self._encoder: Any = aac_encoder(min(bitrate, 320_000))
        self._origin: Fraction | None = None
        """Source time of the first sample fed, so output samples keep the source's clock."""
        self._samples = 0
        self.failed = 0

    def push(self, packet: Packet) -> list[tuple[Fraction, bytes]]:
        import av

        if self._origin is None:
            self._origin = packet.pts * self.track.time_base
        out: list[tuple[Fraction, bytes]] = []
        try:
            frames = self._decoder.decode(av.Packet(packet.data))
            for frame in frames:
                frame.pts = None  # the FIFO restamps by sample count; source gaps are not filled with silence
                for resampled in self._resampler.resample(frame):
                    self._fifo.write(resampled)
            while self._fifo.samples >= AAC_FRAME:
                chunk = self._fifo.read(AAC_FRAME)
                chunk.pts = self._samples
                chunk.sample_rate = AUDIO_RATE
                self._samples += AAC_FRAME
                for encoded in self._encoder.encode(chunk):
                    seconds = self._origin + Fraction(int(encoded.pts), AUDIO_RATE)
                    out.append((seconds, bytes(encoded)))
        except (av.FFmpegError, ValueError) as exc:
            # one corrupt packet must not end the program's sound; count it and go on
            self.failed += 1
            log.debug("program audio: a packet could not be converted (%s)", type(exc).__name__)
        return out
