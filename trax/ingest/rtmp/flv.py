"""FLV tag bodies (RTMP audio/video messages) ↔ the hub's canonical tracks and packets.

Ingest: H.264 AVCC (length-prefixed NAL units) → Annex B with SPS/PPS before keyframes;
AAC raw frames with the AudioSpecificConfig as ``Track.extradata``. Playback does the reverse.
This is byte reshuffling only (no decoding), so it is done here rather than through a
PyAV bitstream filter, which would need a codec context per connection and a copy per packet.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Any, Literal

from trax.ingest.media import H264_IDR, H264_PPS, H264_SPS, Packet, Track, iter_annexb_nals

FLV_TIME_BASE = Fraction(1, 1000)

VIDEO_CODEC_AVC = 7
# Enhanced RTMP (v1): ExHeader bit, packet types, and the FourCC we take (HEVC, as OBS 29+ sends it)
EX_HEADER = 0x80
EX_SEQUENCE_START, EX_CODED_FRAMES, EX_CODED_FRAMES_X = 0, 1, 3
FOURCC_HEVC = b"hvc1"
HEVC_VPS, HEVC_SPS, HEVC_PPS = 32, 33, 34
HEVC_IRAP = range(16, 24)
AUDIO_FORMAT_AAC = 10
H264_AUD = 9

SETTLE_MESSAGES = 64
"""Media messages after which a publisher's track list is fixed even if an announced track never showed."""

AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


class FlvError(ValueError):
    """A malformed audio/video tag body."""


# --- parsing -------------------------------------------------------------------


def parse_avc_config(record: bytes) -> tuple[int, list[bytes], list[bytes]]:
    """An AVCDecoderConfigurationRecord → (NAL length size, SPS list, PPS list)."""
    if len(record) < 7 or record[0] != 1:
        raise FlvError("bad AVCDecoderConfigurationRecord")
    length_size = (record[4] & 0x03) + 1
    pos = 5
    out: list[list[bytes]] = [[], []]
    for which in (0, 1):
        if pos >= len(record):
            raise FlvError("truncated AVCDecoderConfigurationRecord")
        count = record[pos] & (0x1F if which == 0 else 0xFF)
        pos += 1
        for _ in range(count):
            if pos + 2 > len(record):
                raise FlvError("truncated AVCDecoderConfigurationRecord")
            n = int.from_bytes(record[pos : pos + 2], "big")
            pos += 2
            if pos + n > len(record):
                raise FlvError("truncated AVCDecoderConfigurationRecord")
            out[which].append(record[pos : pos + n])
            pos += n
    return length_size, out[0], out[1]


def parse_hevc_config(record: bytes) -> tuple[int, list[bytes]]:
    """An HEVCDecoderConfigurationRecord → (NAL length size, its VPS/SPS/PPS/SEI NAL units in order)."""
    if len(record) < 23:
        raise FlvError("bad HEVCDecoderConfigurationRecord")
    length_size = (record[21] & 0x03) + 1
    pos, nals = 23, []
    for _ in range(record[22]):
        if pos + 3 > len(record):
            raise FlvError("truncated HEVCDecoderConfigurationRecord")
        count = int.from_bytes(record[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            if pos + 2 > len(record):
                raise FlvError("truncated HEVCDecoderConfigurationRecord")
            n = int.from_bytes(record[pos : pos + 2], "big")
            pos += 2
            if pos + n > len(record):
                raise FlvError("truncated HEVCDecoderConfigurationRecord")
            nals.append(record[pos : pos + n])
            pos += n
    return length_size, nals


START_CODE = b"\x00\x00\x00\x01"


def to_annexb(nals: list[bytes] | list[memoryview] | list[bytes | memoryview]) -> bytes:
    """Annex B from NAL units (bytes or views) with a single copy."""
    parts: list[bytes | memoryview] = []
    for nal in nals:
        parts += (START_CODE, nal)
    return b"".join(parts)


def iter_length_prefixed(data: bytes | memoryview, length_size: int) -> Iterator[memoryview | bytes]:
    pos = 0
    n = len(data)
    while pos + length_size <= n:
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size == 0:
            continue
        if pos + size > n:
            raise FlvError("NAL unit runs past the end of the tag")
        yield data[pos : pos + size]
        pos += size


def parse_audio_specific_config(asc: bytes) -> tuple[int | None, int | None]:
    """(sample rate, channels) from an AAC AudioSpecificConfig, where it says."""
    if len(asc) < 2:
        return None, None
    bits = int.from_bytes(asc[:5].ljust(5, b"\x00"), "big")
    object_type = bits >> 35
    shift = 35
    if object_type == 31:
        shift -= 6
    index = (bits >> (shift - 4)) & 0x0F
    shift -= 4
    if index == 15:
        rate: int | None = (bits >> (shift - 24)) & 0xFFFFFF
        shift -= 24
    else:
        rate = AAC_SAMPLE_RATES[index] if index < len(AAC_SAMPLE_RATES) else None
    channels = (bits >> (shift - 4)) & 0x0F
    return rate, channels or None


@dataclass(slots=True)
class _Pending:
    type_id: int
    timestamp: int
    payload: bytes | bytearray


@dataclass
class FlvIngest:
    """Turns a publisher's audio/video messages into tracks, then packets.

    The hub needs the track list up front, but FLV announces codec configuration in
    sequence headers that arrive with the first media. Media is held (bounded) until every
    announced track has its configuration, then released in order.
    """

    expect_video: bool | None = None
    expect_audio: bool | None = None
    max_held: int = 512
    width: int | None = None
    height: int | None = None
    _avc: tuple[int, list[bytes], list[bytes]] | None = None
    _hvc: tuple[int, list[bytes]] | None = None
    _asc: bytes | None = None
    _held: list[_Pending] = field(default_factory=list)
    _tracks: list[Track] | None = None
    _video_index: int | None = None
    _audio_index: int | None = None
    ignored: set[str] = field(default_factory=set)

    def on_metadata(self, meta: dict[str, Any]) -> None:
        if self._tracks is not None:
            return
        self.expect_video = "videocodecid" in meta or "width" in meta
        self.expect_audio = "audiocodecid" in meta or "audiosamplerate" in meta
        for key in ("width", "height"):
            value = meta.get(key)
            if isinstance(value, float | int) and 0 < value < 65536:
                setattr(self, key, int(value))

    @property
    def tracks(self) -> list[Track] | None:
        return self._tracks

    def push(self, type_id: int, timestamp: int, payload: bytes | bytearray) -> list[Packet]:
        """Packets ready for the hub (none while the track list is still being learned)."""
        if self._tracks is not None:
            return self._convert(type_id, timestamp, payload)
        self._learn(type_id, payload)
        self._held.append(_Pending(type_id, timestamp, payload))
        if not self._ready():
            return []
        return self.release()

    def release(self) -> list[Packet]:
        """Fix the track list from what is known and convert everything held."""
        tracks: list[Track] = []
        if self._avc is not None or self._hvc is not None:
            codec: Literal["h264", "hevc"] = "h264" if self._avc is not None else "hevc"
            self._video_index = len(tracks)
            tracks.append(Track(len(tracks), "video", codec, FLV_TIME_BASE, None, self.width, self.height))
        if self._asc is not None:
            rate, channels = parse_audio_specific_config(self._asc)
            self._audio_index = len(tracks)
            tracks.append(
                Track(len(tracks), "audio", "aac", FLV_TIME_BASE, self._asc, sample_rate=rate, channels=channels)
            )
        self._tracks = tracks
        held, self._held = self._held, []
        out: list[Packet] = []
        for p in held:
            out += self._convert(p.type_id, p.timestamp, p.payload)
        return out

    @property
    def holding(self) -> int:
        return len(self._held)

    def _ready(self) -> bool:
        have_video, have_audio = self._avc is not None or self._hvc is not None, self._asc is not None
        want_video = self.expect_video if self.expect_video is not None else True
        want_audio = self.expect_audio if self.expect_audio is not None else True
        if (have_video or not want_video) and (have_audio or not want_audio):
            return True
        if len(self._held) >= SETTLE_MESSAGES and (have_video or have_audio):
            return True  # a track announced (or assumed) but never configured: go with what there is
        return len(self._held) >= self.max_held

    def _learn(self, type_id: int, payload: bytes | bytearray) -> None:
        if type_id == 9 and len(payload) >= 5 and payload[0] & EX_HEADER:
            if payload[0] & 0x0F == EX_SEQUENCE_START and payload[1:5] == FOURCC_HEVC:
                self._hvc = parse_hevc_config(bytes(payload[5:]))
        elif type_id == 9 and len(payload) >= 5 and payload[0] & 0x0F == VIDEO_CODEC_AVC and payload[1] == 0:
            self._avc = parse_avc_config(bytes(payload[5:]))
        elif type_id == 8 and len(payload) >= 2 and payload[0] >> 4 == AUDIO_FORMAT_AAC and payload[1] == 0:
            self._asc = bytes(payload[2:])

    def _convert(self, type_id: int, timestamp: int, payload: bytes | bytearray) -> list[Packet]:
        if type_id == 9:
            return self._video(timestamp, payload)
        if type_id == 8:
            return self._audio(timestamp, payload)
        return []

    def _video(self, timestamp: int, payload: bytes | bytearray) -> list[Packet]:
        if not payload:
            return []
        if payload[0] & EX_HEADER:
            return self._enhanced_video(timestamp, payload)
        if payload[0] & 0x0F != VIDEO_CODEC_AVC:
            self.ignored.add(f"flv video codec {payload[0] & 0x0F}")
            return []
        if len(payload) < 5:
            raise FlvError("short AVC tag")
        kind = payload[1]
        if kind == 0:
            self._avc = parse_avc_config(bytes(payload[5:]))
            return []
        if kind != 1 or self._video_index is None or self._avc is None:
            return []
        cts = int.from_bytes(payload[2:5], "big")
        if cts & 0x800000:
            cts -= 0x1000000
        length_size, sps, pps = self._avc
        nals = list(iter_length_prefixed(memoryview(payload)[5:], length_size))  # views: one copy, in annexb()
        if not nals:
            return []
        # NAL types straight from the length prefixes: no start-code scan of the frame (this is the hot path)
        types = [n[0] & 0x1F for n in nals]
        idr = H264_IDR in types
        if H264_SPS in types and H264_PPS in types:  # in-band parameter sets replace the announced ones
            self._avc = (length_size, [bytes(nals[types.index(H264_SPS)])], [bytes(nals[types.index(H264_PPS)])])
        elif idr and sps and pps:
            nals = [sps[0], pps[0], *(n for n, t in zip(nals, types, strict=True) if t not in (H264_SPS, H264_PPS))]
        keyframe = idr or (payload[0] >> 4) == 1
        return [Packet(self._video_index, to_annexb(nals), timestamp + cts, timestamp, keyframe)]

    def _enhanced_video(self, timestamp: int, payload: bytes | bytearray) -> list[Packet]:
        if len(payload) < 5 or payload[1:5] != FOURCC_HEVC:
            self.ignored.add(f"enhanced-rtmp video {bytes(payload[1:5])!r}")
            return []
        packet_type, frame_type = payload[0] & 0x0F, (payload[0] >> 4) & 0x07
        if packet_type == EX_SEQUENCE_START:
            self._hvc = parse_hevc_config(bytes(payload[5:]))
            return []
        if packet_type == EX_CODED_FRAMES:
            if len(payload) < 8:
                raise FlvError("short HEVC tag")
            cts, body = int.from_bytes(payload[5:8], "big"), payload[8:]
            if cts & 0x800000:
                cts -= 0x1000000
        elif packet_type == EX_CODED_FRAMES_X:
            cts, body = 0, payload[5:]
        else:
            return []  # sequence end, metadata (colour info), multitrack ...
        if self._video_index is None or self._hvc is None or frame_type == 5:
            return []
        length_size, params = self._hvc
        nals = list(iter_length_prefixed(memoryview(body), length_size))
        if not nals:
            return []
        types = [(n[0] >> 1) & 0x3F for n in nals]
        keyframe = any(t in HEVC_IRAP for t in types) or frame_type == 1
        if keyframe and not {HEVC_VPS, HEVC_SPS, HEVC_PPS} <= set(types):
            nals = [*params, *nals]  # the canonical form: parameter sets before every keyframe
        return [Packet(self._video_index, to_annexb(nals), timestamp + cts, timestamp, keyframe)]

    def _audio(self, timestamp: int, payload: bytes | bytearray) -> list[Packet]:
        if len(payload) < 2:
            return []
        if payload[0] >> 4 != AUDIO_FORMAT_AAC:
            self.ignored.add(f"flv audio format {payload[0] >> 4}")
            return []
        if payload[1] == 0:
            return []  # a repeated sequence header; the track's extradata already holds the first
        if self._audio_index is None:
            return []
        return [Packet(self._audio_index, bytes(memoryview(payload)[2:]), timestamp, timestamp, True)]


# --- writing (playback) ----------------------------------------------------------


def avc_config(sps: bytes, pps: bytes) -> bytes:
    """An AVCDecoderConfigurationRecord with 4-byte NAL lengths."""
    if len(sps) < 4:
        raise FlvError("SPS too short")
    return (
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1])
        + struct.pack(">H", len(sps))
        + sps
        + b"\x01"
        + struct.pack(">H", len(pps))
        + pps
    )


def _rescale(value: int, tb: Fraction) -> int:
    """``value`` ticks of ``tb`` in milliseconds, truncated toward zero (integer arithmetic: no Fraction per packet)."""
    scaled = value * tb.numerator * 1000
    ms = abs(scaled) // tb.denominator
    return ms if scaled >= 0 else -ms


def _video_tag(packet: Packet, track: Track) -> tuple[bytes | None, bytes | None]:
    """An H.264 packet as (its AVC configuration record if it carries SPS + PPS, the coded-frames tag body).

    Both depend on the packet alone, never on the connection, so :class:`TagCache` can share them.
    """
    nals = list(iter_annexb_nals(packet.data))
    types = [n[0] & 0x1F for n in nals]
    record = None
    if H264_SPS in types and H264_PPS in types:
        record = avc_config(nals[types.index(H264_SPS)], nals[types.index(H264_PPS)])
    skip = (H264_SPS, H264_PPS, H264_AUD)
    body = b"".join(struct.pack(">I", len(n)) + n for n, t in zip(nals, types, strict=True) if t not in skip)
    if not body:
        return record, None
    cts = _rescale(packet.pts - packet.dts, track.time_base)
    head = 0x17 if packet.keyframe else 0x27
    return record, bytes([head, 1]) + (cts & 0xFFFFFF).to_bytes(3, "big") + body


class TagCache:
    """The video tag bodies of the latest packets, for every connection that sends one hub path.

    Every reader of a path is handed the same :class:`Packet` objects, so N destinations of one program
    need one NAL scan and one copy of each frame, not N. Entries are keyed by identity and hold their
    packet, so a recycled ``id`` is never mistaken for a hit; ``size`` bounds what is kept.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._recent: OrderedDict[int, tuple[Packet, bytes | None, bytes | None]] = OrderedDict()
        self.hits = 0

    def video(self, packet: Packet, track: Track) -> tuple[bytes | None, bytes | None]:
        hit = self._recent.get(id(packet))
        if hit is not None and hit[0] is packet:
            self.hits += 1
            return hit[1], hit[2]
        record, tag = _video_tag(packet, track)
        self._recent[id(packet)] = (packet, record, tag)
        if len(self._recent) > self.size:
            self._recent.popitem(last=False)
        return record, tag


@dataclass
class FlvEgress:
    """Turns hub packets back into FLV audio/video tag bodies: (type_id, timestamp ms, payload)."""

    tracks: list[Track]
    _sent_avc: bytes | None = None
    _sent_aac: bool = False
    _origin: int | None = None
    skipped: set[str] = field(default_factory=set)
    shared: TagCache | None = None
    """Tag bodies worked out once for every connection sending the same packets (``None``: each on its own)."""

    @cached_property
    def video(self) -> Track | None:
        return next((t for t in self.tracks if t.kind == "video" and t.codec == "h264"), None)

    @cached_property
    def audio(self) -> Track | None:
        return next((t for t in self.tracks if t.kind == "audio" and t.codec == "aac"), None)

    @cached_property
    def _by_index(self) -> dict[int, Track]:
        return {t.index: t for t in self.tracks}

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        v, a = self.video, self.audio
        if v is not None:
            meta["videocodecid"] = VIDEO_CODEC_AVC
            if v.width and v.height:
                meta["width"], meta["height"] = v.width, v.height
        if a is not None:
            meta["audiocodecid"] = AUDIO_FORMAT_AAC
            if a.sample_rate:
                meta["audiosamplerate"] = a.sample_rate
            if a.channels:
                meta["stereo"] = a.channels > 1
        return meta

    def convert(self, packet: Packet) -> list[tuple[int, int, bytes]]:
        track = self._by_index.get(packet.track)
        if track is None:
            return []
        if track is not self.video and track is not self.audio:
            self.skipped.add(f"{track.kind} {track.codec}")
            return []
        dts_ms = _rescale(packet.dts, track.time_base)
        if self._origin is None:
            self._origin = dts_ms
        ts = max(0, dts_ms - self._origin) & 0xFFFFFFFF
        out: list[tuple[int, int, bytes]] = []
        if track is self.video:
            record, tag = self.shared.video(packet, track) if self.shared is not None else _video_tag(packet, track)
            if record is not None and record != self._sent_avc:
                out.append((9, ts, b"\x17\x00\x00\x00\x00" + record))
                self._sent_avc = record
            if self._sent_avc is None:
                return out  # nothing decodable before the first keyframe's parameter sets
            if tag is not None:
                out.append((9, ts, tag))
        else:
            if not self._sent_aac:
                if not track.extradata:
                    return out
                out.append((8, ts, b"\xaf\x00" + track.extradata))
                self._sent_aac = True
            out.append((8, ts, b"\xaf\x01" + packet.data))
        return out
