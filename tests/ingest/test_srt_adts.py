"""ADTS <-> raw AAC + AudioSpecificConfig, checked against frames ffmpeg's own AAC encoder wrote."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trax.ingest.srt import adts


def _adts_frames(sample_rate: int, channels: int) -> list[bytes]:
    av = pytest.importorskip("av")
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format="adts")
    stream = out.add_stream("aac", rate=sample_rate, layout="mono" if channels == 1 else "stereo")
    import numpy as np

    frame = av.AudioFrame.from_ndarray(
        np.zeros((channels, 1024), dtype="float32"), format="fltp", layout=stream.layout.name
    )
    frame.sample_rate = sample_rate
    for i in range(5):
        frame.pts = i * 1024
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
    out.close()
    data = buf.getvalue()
    frames, pos = [], 0
    while pos < len(data):
        head = adts.parse_header(data[pos:])
        frames.append(data[pos : pos + head.frame_length])
        pos += head.frame_length
    return frames


@pytest.mark.parametrize(("rate", "channels"), [(48000, 2), (44100, 1)])
def test_strip_then_rebuild_gives_back_ffmpegs_frames(rate: int, channels: int) -> None:
    frames = _adts_frames(rate, channels)
    assert frames
    for frame in frames:
        head, raw = adts.strip(frame)
        assert head.sample_rate == rate and head.channel_config == channels and head.object_type == 2
        asc = head.audio_specific_config()
        rebuilt = adts.header_for(asc, len(raw)) + raw
        # the buffer-fullness field may differ (ffmpeg writes 0x7FF too); the rest must match
        assert rebuilt[:5] == frame[:5] and rebuilt[7:] == frame[7:]


def test_garbage_is_refused() -> None:
    for bad in (b"", b"\x00" * 7, b"\xff\xf1", b"\xff\xf1\xfc\x80\x00\x1f\xfc"):
        with pytest.raises(adts.AdtsError):
            adts.strip(bad)
    with pytest.raises(adts.AdtsError):
        adts.header_for(b"\xf8\x00", 10)  # object type 31 (escape) has no ADTS form


@given(st.binary(max_size=64))
def test_parse_never_raises_other_errors(data: bytes) -> None:
    with contextlib.suppress(adts.AdtsError):
        adts.strip(data)
