"""HEVC's canonical form in the hub: VPS/SPS/PPS in front of every random-access (IRAP) picture.

The H.264 counterpart is :class:`trax.ingest.media.H264ParameterSets`; HEVC
has three parameter sets and IRAP NAL types 16 to 23 (ITU-T H.265, 7.4.2.2).
"""

from __future__ import annotations

from trax.ingest.media import annexb, iter_annexb_nals

VPS, SPS, PPS = 32, 33, 34
_PARAMETER_SETS = (VPS, SPS, PPS)


def nal_type(nal: bytes) -> int:
    return (nal[0] >> 1) & 0x3F


def is_irap(t: int) -> bool:
    return 16 <= t <= 23


class HevcParameterSets:
    """Remembers the latest VPS/SPS/PPS so every IRAP picture can carry them."""

    def __init__(self) -> None:
        self.sets: dict[int, bytes] = {}

    def canonical(self, data: bytes) -> tuple[bytes, bool]:
        """``data`` with VPS/SPS/PPS in front of an IRAP picture when missing; returns (data, keyframe)."""
        nals = [n for n in iter_annexb_nals(data) if n]
        types = [nal_type(n) for n in nals]
        for nal, t in zip(nals, types, strict=True):
            if t in _PARAMETER_SETS:
                self.sets[t] = nal
        if not any(is_irap(t) for t in types):
            return data, False
        if all(t in types for t in _PARAMETER_SETS):
            return data, True
        head = [self.sets[t] for t in _PARAMETER_SETS if t in self.sets]
        body = [n for n, t in zip(nals, types, strict=True) if t not in _PARAMETER_SETS]
        return annexb(head + body), True
