"""MPEG-TS in and out of the hub's canonical form (PyAV), without a network."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import pytest

from trax.ingest.media import H264_PPS, H264_SPS, Packet, Track, annexb, h264_nal_types, iter_annexb_nals
from trax.ingest.srt.demux import DemuxError, TsDemuxer
from trax.ingest.srt.mux import TsMuxer

av = pytest.importorskip("av")
np = pytest.importorskip("numpy")


def _ts_feed(seconds: int = 2) -> bytes:
    """H.264 + AAC in MPEG-TS whose keyframes after the first lack SPS/PPS (as from an encoder with global headers)."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt, enc.time_base = 160, 120, "yuv420p", Fraction(1, 25)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "10"}
    video: list[Packet] = []
    for i in range(25 * seconds):
        frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), i % 255, dtype="uint8"), format="rgb24")
        frame.pts = i
        for p in enc.encode(frame.reformat(format="yuv420p")):
            data = bytes(p)
            if p.is_keyframe and video:
                data = annexb([n for n in iter_annexb_nals(data) if n[0] & 0x1F not in (H264_SPS, H264_PPS)])
            video.append(Packet(track=0, data=data, pts=p.pts * 3600, dts=p.dts * 3600, keyframe=p.is_keyframe))
    aenc = av.CodecContext.create("aac", "w")
    aenc.sample_rate, aenc.layout, aenc.format, aenc.time_base = 48000, "mono", "fltp", Fraction(1, 48000)
    audio: list[Packet] = []
    for i in range(48000 * seconds // 1024):
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype="float32"), format="fltp", layout="mono")
        af.sample_rate, af.pts = 48000, i * 1024
        for p in aenc.encode(af):
            ts = int(Fraction(p.pts, 48000) * 90000)
            audio.append(Packet(track=1, data=bytes(p), pts=ts, dts=ts, keyframe=True))
    tracks = [
        Track(index=0, kind="video", codec="h264", time_base=Fraction(1, 90000), width=160, height=120),
        Track(index=1, kind="audio", codec="aac", time_base=Fraction(1, 90000), extradata=bytes(aenc.extradata),
              sample_rate=48000, channels=1),
    ]  # fmt: skip
    buf = io.BytesIO()
    muxer = TsMuxer(tracks, buf.write)
    for packet in sorted(video + audio, key=lambda p: p.dts):
        muxer.send(packet)
    muxer.close()
    return buf.getvalue()


class _Source:
    def __init__(self, data: bytes) -> None:
        self._b = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._b.read(min(size, 1316) if size > 0 else 1316)  # message-sized reads, as over SRT


def _decode(data: bytes) -> dict[str, int]:
    counts: dict[str, int] = {}
    with av.open(io.BytesIO(data), format="mpegts") as c:
        for frame in c.decode(*c.streams):
            kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_demux_gives_canonical_packets_and_mux_restores_a_playable_stream() -> None:
    feed = _ts_feed()
    demuxer = TsDemuxer(_Source(feed))
    tracks = demuxer.open()
    packets = list(demuxer.packets())
    demuxer.close()
    assert [(t.kind, t.codec) for t in tracks] == [("video", "h264"), ("audio", "aac")]
    assert tracks[0].width == 160 and tracks[1].sample_rate == 48000 and tracks[1].extradata
    video = [p for p in packets if p.track == 0]
    audio = [p for p in packets if p.track == 1]
    keys = [p for p in video if p.keyframe]
    assert len(video) == 50 and len(keys) == 5
    assert all({H264_SPS, H264_PPS} <= set(h264_nal_types(p.data)) for p in keys), "SPS/PPS before every keyframe"
    assert all(not p.data.startswith(b"\xff\xf1") for p in audio), "AAC must be raw (no ADTS)"
    assert [p.pts for p in audio] == sorted({p.pts for p in audio})

    out = io.BytesIO()
    muxer = TsMuxer(tracks, out.write)
    for p in packets:
        muxer.send(p)
    muxer.close()
    assert muxer.dropped == 0
    assert _decode(out.getvalue()) == _decode(feed)


@pytest.mark.parametrize("channels", [1, 2])
def test_opus_goes_into_ts_and_vp8_is_left_out(channels: int) -> None:
    layout = "mono" if channels == 1 else "stereo"
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format, enc.time_base = 48000, layout, "s16", Fraction(1, 48000)
    encoded = []
    for i in range(25):
        f = av.AudioFrame.from_ndarray(np.zeros((1, 960 * channels), dtype="int16"), format="s16", layout=layout)
        f.sample_rate, f.pts, f.time_base = 48000, i * 960, Fraction(1, 48000)
        encoded += enc.encode(f)
    tracks = [
        Track(index=0, kind="video", codec="vp8", time_base=Fraction(1, 90000), width=160, height=120),
        Track(index=1, kind="audio", codec="opus", time_base=Fraction(1, 48000), sample_rate=48000, channels=channels),
    ]
    out = io.BytesIO()
    muxer = TsMuxer(tracks, out.write)
    assert muxer.track_count == 1
    muxer.send(Packet(track=0, data=b"\x10\x02\x00\x9d\x01\x2a", pts=0, dts=0, keyframe=True))
    for p in encoded:
        muxer.send(Packet(track=1, data=bytes(p), pts=p.pts, dts=p.pts, keyframe=True))
    muxer.close()
    assert _decode(out.getvalue()) == {"audio": len(encoded)}


def test_non_increasing_timestamps_are_dropped_not_fatal() -> None:
    demuxer = TsDemuxer(_Source(_ts_feed(1)))
    tracks = demuxer.open()
    packets = list(demuxer.packets())
    muxer = TsMuxer(tracks, io.BytesIO().write)
    for p in packets:
        muxer.send(p)
    muxer.send(packets[0])  # a replay from the past
    muxer.close()
    assert muxer.dropped == 1


@pytest.mark.parametrize("data", [b"", b"\x00" * 5000, bytes(range(256)) * 40])
def test_not_mpegts_is_a_demux_error(data: bytes, tmp_path: Path) -> None:
    with pytest.raises(DemuxError):
        TsDemuxer(_Source(data)).open()


def _nal(t: int, body: bytes = b"\xaa\xbb") -> bytes:
    return bytes([t << 1, 0x01]) + body


def test_hevc_parameter_sets_go_back_in_front_of_irap_pictures() -> None:
    from trax.ingest.srt.hevc import PPS, SPS, VPS, HevcParameterSets, nal_type

    params = HevcParameterSets()
    first = annexb([_nal(VPS), _nal(SPS), _nal(PPS), _nal(19, b"\x01")])  # IDR_W_RADL with its sets
    data, key = params.canonical(first)
    assert key and data == first
    trailing = annexb([_nal(1, b"\x02")])  # TRAIL_R: untouched
    assert params.canonical(trailing) == (trailing, False)
    bare_cra = annexb([_nal(21, b"\x03")])  # CRA without sets: they are put back in front
    data, key = params.canonical(bare_cra)
    assert key and [nal_type(n) for n in iter_annexb_nals(data)] == [VPS, SPS, PPS, 21]
