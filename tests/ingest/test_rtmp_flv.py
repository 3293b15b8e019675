from __future__ import annotations

from fractions import Fraction

import pytest

from trax.ingest.media import Packet, Track, h264_nal_types, iter_annexb_nals
from trax.ingest.rtmp.flv import (
    FlvEgress,
    FlvError,
    FlvIngest,
    TagCache,
    avc_config,
    parse_audio_specific_config,
    parse_avc_config,
)

SPS = bytes.fromhex("6742c01e95a0a0fc88")
PPS = bytes.fromhex("68ce3c80")
IDR = bytes.fromhex("6588840021")
SLICE = bytes.fromhex("419a2222")
ASC = bytes.fromhex("1210")  # AAC LC, 44.1 kHz, stereo


def avcc(*nals: bytes) -> bytes:
    return b"".join(len(n).to_bytes(4, "big") + n for n in nals)


def video_tag(key: bool, kind: int, body: bytes, cts: int = 0) -> bytes:
    return bytes([0x17 if key else 0x27, kind]) + (cts & 0xFFFFFF).to_bytes(3, "big") + body


def test_avc_config_round_trip() -> None:
    assert parse_avc_config(avc_config(SPS, PPS)) == (4, [SPS], [PPS])
    with pytest.raises(FlvError):
        parse_avc_config(avc_config(SPS, PPS)[:9])


def test_audio_specific_config() -> None:
    assert parse_audio_specific_config(ASC) == (44100, 2)
    assert parse_audio_specific_config(bytes.fromhex("1188")) == (48000, 1)


def test_ingest_waits_for_announced_tracks_then_converts() -> None:
    ingest = FlvIngest()
    ingest.on_metadata({"videocodecid": 7.0, "audiocodecid": 10.0, "width": 320.0, "height": 240.0})
    assert ingest.push(9, 0, video_tag(True, 0, avc_config(SPS, PPS))) == []
    assert ingest.tracks is None  # audio announced, not configured yet
    packets = ingest.push(8, 0, b"\xaf\x00" + ASC)
    assert ingest.tracks is not None
    video, audio = ingest.tracks
    assert (video.codec, video.width, video.time_base) == ("h264", 320, Fraction(1, 1000))
    assert (audio.codec, audio.extradata, audio.sample_rate, audio.channels) == ("aac", ASC, 44100, 2)
    assert packets == []  # the sequence headers are configuration, not packets

    key = ingest.push(9, 40, video_tag(True, 1, avcc(IDR), cts=80))
    assert len(key) == 1 and key[0].keyframe and (key[0].dts, key[0].pts) == (40, 120)
    assert h264_nal_types(key[0].data) == [7, 8, 5]  # SPS/PPS put in front of the IDR (canonical form)
    assert key[0].data.startswith(b"\x00\x00\x00\x01")

    inter = ingest.push(9, 80, video_tag(False, 1, avcc(SLICE), cts=-40))
    assert h264_nal_types(inter[0].data) == [1] and not inter[0].keyframe and inter[0].pts == 40

    (aac,) = ingest.push(8, 23, b"\xaf\x01raw")
    assert (aac.track, aac.data, aac.pts) == (1, b"raw", 23)


def test_unsupported_codecs_are_skipped_and_named() -> None:
    ingest = FlvIngest()
    ingest.on_metadata({"videocodecid": 2.0})
    ingest.release()
    assert ingest.push(9, 0, b"\x22\x00\x00") == []  # Sorenson H.263
    assert ingest.push(8, 0, b"\x2f\x00") == []  # MP3
    assert "flv video codec 2" in ingest.ignored and "flv audio format 2" in ingest.ignored


def test_nal_length_past_the_tag_is_refused() -> None:
    ingest = FlvIngest(expect_video=True, expect_audio=False)
    ingest.push(9, 0, video_tag(True, 0, avc_config(SPS, PPS)))
    with pytest.raises(FlvError):
        ingest.push(9, 0, video_tag(True, 1, b"\x00\x00\x10\x00" + IDR))


def test_egress_sends_sequence_headers_then_avcc() -> None:
    tracks = [
        Track(0, "video", "h264", Fraction(1, 90000), width=320, height=240),
        Track(1, "audio", "aac", Fraction(1, 44100), ASC, sample_rate=44100, channels=2),
        Track(2, "audio", "opus", Fraction(1, 48000)),
    ]
    egress = FlvEgress(tracks)
    assert egress.metadata()["width"] == 320
    annexb_key = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS + b"\x00\x00\x00\x01" + IDR
    tags = egress.convert(Packet(0, annexb_key, pts=90000 + 3600, dts=90000, keyframe=True))
    assert tags[0] == (9, 0, b"\x17\x00\x00\x00\x00" + avc_config(SPS, PPS))
    assert tags[1] == (9, 0, b"\x17\x01" + (40).to_bytes(3, "big") + avcc(IDR))
    # unchanged parameter sets are not re-sent
    again = egress.convert(Packet(0, annexb_key, pts=180000, dts=180000, keyframe=True))
    assert [t[2][1] for t in again] == [1] and again[0][1] == 1000
    audio = egress.convert(Packet(1, b"raw", pts=44100 * 2, dts=44100 * 2, keyframe=True))
    assert audio == [(8, 1000, b"\xaf\x00" + ASC), (8, 1000, b"\xaf\x01raw")]
    assert egress.convert(Packet(2, b"opus", 0, 0)) == [] and "audio opus" in egress.skipped


def test_connections_sharing_a_tag_cache_send_what_each_would_alone() -> None:
    tracks = [Track(0, "video", "h264", Fraction(1, 90000), width=320, height=240)]
    key = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS + b"\x00\x00\x00\x01" + IDR
    packets = [
        Packet(0, key, pts=90000, dts=90000, keyframe=True),
        Packet(0, b"\x00\x00\x00\x01" + SLICE, 93000, 93000),
    ]
    shared = TagCache(size=4)
    first, second, alone = FlvEgress(tracks, shared=shared), FlvEgress(tracks, shared=shared), FlvEgress(tracks)
    # the second connection joins one packet late: its own timestamps, the same bodies
    out_first = [first.convert(p) for p in packets]
    out_second = second.convert(packets[1])
    assert out_first == [alone.convert(p) for p in packets]
    assert out_second == []  # no parameter sets seen yet on this connection
    assert shared.hits == 1
    assert out_first[1][0][2] is shared.video(packets[1], tracks[0])[1], "the body is one object, not a copy"
    for n in range(10):  # bounded: old packets leave the cache
        shared.video(Packet(0, key, n, n, keyframe=True), tracks[0])
    assert len(shared._recent) == 4


def test_egress_holds_video_until_parameter_sets() -> None:
    egress = FlvEgress([Track(0, "video", "h264", Fraction(1, 1000))])
    assert egress.convert(Packet(0, b"\x00\x00\x00\x01" + SLICE, 0, 0)) == []


def test_real_h264_survives_flv_and_back() -> None:
    """PyAV-encoded Annex B → FLV tags → canonical packets → every frame decodes."""
    av = pytest.importorskip("av")
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 64, 64, "yuv420p"
    enc.time_base = Fraction(1, 25)
    enc.options = {"g": "5", "bf": "2", "preset": "ultrafast"}
    packets: list[Packet] = []
    for i in range(20):
        frame = av.VideoFrame(64, 64, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 7) % 256]) * plane.buffer_size)
        frame.pts = i
        for p in enc.encode(frame):
            packets.append(Packet(0, bytes(p), int(p.pts) * 40 + 1000, int(p.dts) * 40 + 1000, p.is_keyframe))
    for p in enc.encode(None):
        packets.append(Packet(0, bytes(p), int(p.pts) * 40 + 1000, int(p.dts) * 40 + 1000, p.is_keyframe))
    assert len(packets) == 20

    egress = FlvEgress([Track(0, "video", "h264", Fraction(1, 1000))])
    ingest = FlvIngest(expect_video=True, expect_audio=False)
    out: list[Packet] = []
    for p in packets:
        for type_id, ts, body in egress.convert(p):
            out += ingest.push(type_id, ts, body)
    assert len(out) == 20
    assert all(h264_nal_types(p.data)[:2] == [7, 8] for p in out if p.keyframe)
    dec = av.CodecContext.create("h264", "r")
    frames = sum(len(dec.decode(av.Packet(p.data))) for p in out) + len(dec.decode(None))
    assert frames == 20


def test_an_announced_track_that_never_comes_does_not_hold_the_stream() -> None:
    from trax.ingest.rtmp.flv import SETTLE_MESSAGES

    ingest = FlvIngest()
    ingest.on_metadata({"videocodecid": 7.0, "audiocodecid": 10.0})  # audio announced, never sent
    ingest.push(9, 0, video_tag(True, 0, avc_config(SPS, PPS)))
    out = []
    for i in range(SETTLE_MESSAGES):
        out += ingest.push(9, 40 * i, video_tag(i == 0, 1, avcc(IDR if i == 0 else SLICE)))
    assert ingest.tracks is not None and [t.kind for t in ingest.tracks] == ["video"]
    assert len(out) == SETTLE_MESSAGES  # no frame lost: the held ones are released in order
    assert [p.dts for p in out] == sorted(p.dts for p in out)


def flv_tags(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, timestamp, body) of every tag of an FLV file."""
    tags, pos = [], 13
    while pos + 11 <= len(data):
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        tags.append((data[pos], ts, data[pos + 11 : pos + 11 + size]))
        pos += 11 + size + 4
    return tags


def test_enhanced_rtmp_hevc_as_obs_sends_it() -> None:
    """FFmpeg 8's FLV muxer (in PyAV) writes Enhanced RTMP HEVC like OBS 29+: every frame decodes after ingest."""
    import io

    av = pytest.importorskip("av")
    if "libx265" not in av.codecs_available:
        pytest.skip("PyAV has no libx265")
    buf = io.BytesIO()
    with av.open(buf, "w", format="flv") as out:
        stream = out.add_stream("libx265", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"x265-params": "log-level=none:keyint=10"}
        for i in range(20):
            frame = av.VideoFrame(64, 64, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(i * 9) % 256]) * plane.buffer_size)
            frame.pts = i
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    tags = flv_tags(buf.getvalue())
    assert any(body[0] & 0x80 and body[1:5] == b"hvc1" for t, _, body in tags if t == 9)  # really enhanced

    ingest = FlvIngest(expect_video=True, expect_audio=False)
    packets = [p for t, ts, body in tags if t in (8, 9) for p in ingest.push(t, ts, body)]
    assert ingest.tracks is not None and ingest.tracks[0].codec == "hevc"
    assert len(packets) == 20
    hevc_types = [[(n[0] >> 1) & 0x3F for n in iter_annexb_nals(p.data)] for p in packets if p.keyframe]
    assert len(hevc_types) >= 2 and all(t[:3] == [32, 33, 34] for t in hevc_types)  # VPS/SPS/PPS first
    dec = av.CodecContext.create("hevc", "r")
    frames = sum(len(dec.decode(av.Packet(p.data))) for p in packets) + len(dec.decode(None))
    assert frames == 20


def test_other_enhanced_fourccs_are_skipped_and_named() -> None:
    ingest = FlvIngest(expect_video=True, expect_audio=True)
    ingest.push(8, 0, b"\xaf\x00" + ASC)
    ingest.release()
    assert ingest.push(9, 0, b"\x91av01" + bytes(8)) == []
    assert any("av01" in reason for reason in ingest.ignored)


def test_hevc_parameter_sets_are_put_before_a_bare_keyframe() -> None:
    vps, sps, pps, idr, trail = b"\x40\x01v", b"\x42\x01s", b"\x44\x01p", b"\x26\x01i", b"\x02\x01t"
    arrays = b"".join(bytes([0x80 | (n[0] >> 1), 0, 1]) + len(n).to_bytes(2, "big") + n for n in (vps, sps, pps))
    record = bytes([1]) + bytes(20) + bytes([0xFF, 3]) + arrays  # lengthSizeMinusOne = 3
    ingest = FlvIngest(expect_video=True, expect_audio=False)
    assert ingest.push(9, 0, b"\x90hvc1" + record) == []
    (key,) = ingest.push(9, 0, b"\x91hvc1" + bytes(3) + avcc(idr))
    (inter,) = ingest.push(9, 40, b"\xa3hvc1" + avcc(trail))  # CodedFramesX: no composition time
    assert key.keyframe and list(iter_annexb_nals(key.data)) == [vps, sps, pps, idr]
    assert not inter.keyframe and list(iter_annexb_nals(inter.data)) == [trail] and inter.pts == 40
