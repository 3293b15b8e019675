"""The canonical media model: tracks validate, Annex B helpers find NAL units and keyframes."""

from __future__ import annotations

from fractions import Fraction

import pytest

from trax.ingest.media import (
    H264ParameterSets,
    Packet,
    Track,
    annexb,
    h264_is_keyframe,
    h264_nal_types,
    vp8_is_keyframe,
)

SPS = bytes([0x67, 0x42, 0xC0, 0x1E, 0xAA])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01])  # carries an emulation-prevention 00 00 03
SLICE = bytes([0x41, 0x9A, 0x02])


def test_track_rejects_a_codec_of_the_wrong_kind() -> None:
    Track(0, "video", "h264", Fraction(1, 90000))
    with pytest.raises(ValueError):
        Track(0, "video", "aac", Fraction(1, 90000))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Track(1, "audio", "opus", Fraction(0, 1))


def test_packet_repr_hides_the_payload() -> None:
    assert "bytes=3" in repr(Packet(0, b"\x01\x02\x03", 0, 0, True))


def test_annexb_split_with_3_and_4_byte_start_codes() -> None:
    data = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x01" + IDR
    assert h264_nal_types(data) == [7, 8, 5]
    assert h264_is_keyframe(data)
    assert not h264_is_keyframe(annexb([SLICE]))


def test_parameter_sets_are_put_before_every_keyframe() -> None:
    ps = H264ParameterSets()
    first, key = ps.canonical(annexb([SPS, PPS, IDR]))
    assert key and h264_nal_types(first) == [7, 8, 5]
    later, key = ps.canonical(annexb([IDR]))  # encoder sent them only once
    assert key and later == annexb([SPS, PPS, IDR])
    plain, key = ps.canonical(annexb([SLICE]))
    assert not key and plain == annexb([SLICE])


def test_vp8_keyframe_bit() -> None:
    assert vp8_is_keyframe(b"\x10\x02\x00\x9d\x01\x2a")
    assert not vp8_is_keyframe(b"\x31\x02\x00")
    assert not vp8_is_keyframe(b"")
