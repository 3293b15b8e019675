"""The media model every ingest protocol shares: tracks and packets in one canonical form.

Canonical payloads inside the hub (each protocol converts at its own edge):

* H.264 / HEVC: Annex B byte stream, SPS/PPS (and VPS) repeated before every keyframe;
* AAC: raw access units (no ADTS header), the AudioSpecificConfig in ``Track.extradata``;
* Opus: raw Opus packets; VP8: raw frames (no RTP payload descriptor).

Timestamps are integers in the track's ``time_base``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

TrackKind = Literal["video", "audio"]
Codec = Literal["h264", "hevc", "aac", "opus", "vp8"]

VIDEO_CODECS: frozenset[str] = frozenset({"h264", "hevc", "vp8"})
AUDIO_CODECS: frozenset[str] = frozenset({"aac", "opus"})

RTP_VIDEO_TIME_BASE = Fraction(1, 90000)
OPUS_TIME_BASE = Fraction(1, 48000)


@dataclass(frozen=True, slots=True)
class Track:
    index: int
    kind: TrackKind
    codec: Codec
    time_base: Fraction
    extradata: bytes | None = None
    width: int | None = None
    height: int | None = None
    sample_rate: int | None = None
    channels: int | None = None

    def __post_init__(self) -> None:
        allowed = VIDEO_CODECS if self.kind == "video" else AUDIO_CODECS
        if self.kind not in ("video", "audio") or self.codec not in allowed:
            raise ValueError(f"track {self.index}: {self.codec!r} is not a {self.kind!r} codec")
        if self.time_base <= 0:
            raise ValueError(f"track {self.index}: time_base must be positive")


@dataclass(frozen=True, slots=True)
class Packet:
    """One encoded access unit of one track."""

    track: int
    data: bytes
    pts: int
    dts: int
    keyframe: bool = False

    def __repr__(self) -> str:  # the payload is noise in logs
        return (
            f"Packet(track={self.track}, bytes={len(self.data)}, pts={self.pts}, dts={self.dts}, key={self.keyframe})"
        )


# --- Annex B helpers (H.264) ---------------------------------------------------

H264_IDR = 5
H264_SPS = 7
H264_PPS = 8


def iter_annexb_nals(data: bytes) -> Iterator[bytes]:
    """NAL units of an Annex B buffer (3- or 4-byte start codes), without their start codes."""
    n = len(data)
    i = data.find(b"\x00\x00\x01")
    while 0 <= i < n:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = n if j < 0 else j
        # a 4-byte start code leaves one zero byte at the end of the previous NAL
        nal = data[start:end]
        if j >= 0 and nal.endswith(b"\x00"):
            nal = nal.rstrip(b"\x00")
        if nal:
            yield nal
        i = j


def h264_nal_types(data: bytes) -> list[int]:
    return [nal[0] & 0x1F for nal in iter_annexb_nals(data)]


def h264_is_keyframe(data: bytes) -> bool:
    return H264_IDR in h264_nal_types(data)


def annexb(nals: list[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in nals)


class H264ParameterSets:
    """Remembers the latest SPS/PPS so every keyframe can carry them (the canonical form)."""

    def __init__(self) -> None:
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def canonical(self, data: bytes) -> tuple[bytes, bool]:
        """``data`` with SPS/PPS in front of an IDR when missing; returns (data, keyframe)."""
        nals = list(iter_annexb_nals(data))
        types = [nal[0] & 0x1F for nal in nals]
        for nal, t in zip(nals, types, strict=True):
            if t == H264_SPS:
                self.sps = nal
            elif t == H264_PPS:
                self.pps = nal
        if H264_IDR not in types:
            return data, False
        if H264_SPS in types and H264_PPS in types:
            return data, True
        head = [p for p in (self.sps, self.pps) if p is not None]
        body = [nal for nal, t in zip(nals, types, strict=True) if t not in (H264_SPS, H264_PPS)]
        return annexb(head + body), True


def vp8_is_keyframe(data: bytes) -> bool:
    """RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame."""
    return bool(data) and (data[0] & 0x01) == 0
