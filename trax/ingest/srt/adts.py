"""AAC in MPEG-TS travels with 7- or 9-byte ADTS headers; the hub holds raw AAC plus an AudioSpecificConfig.

PyAV demuxes ADTS frames and muxes whatever bytes it is given, but it exposes
neither the ``aac_adtstoasc`` filter's output extradata nor a way to set
extradata on a stream muxed without a codec context, so the two header
conversions (ISO/IEC 14496-3 1.6.2.1 and 1.A.2.2) are done here.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_SBR_TYPES = (5, 29)


class AdtsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AdtsFrame:
    object_type: int
    sample_rate_index: int
    channel_config: int
    header_length: int
    frame_length: int
    raw_blocks: int

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATES[self.sample_rate_index]

    def audio_specific_config(self) -> bytes:
        """The 2-byte AudioSpecificConfig equivalent to this header."""
        value = (self.object_type << 11) | (self.sample_rate_index << 7) | (self.channel_config << 3)
        return value.to_bytes(2, "big")


def parse_header(data: bytes) -> AdtsFrame:
    if len(data) < 7 or data[0] != 0xFF or (data[1] & 0xF6) != 0xF0:
        raise AdtsError("not an ADTS frame")
    protection_absent = data[1] & 0x01
    profile = data[2] >> 6
    sr_index = (data[2] >> 2) & 0x0F
    channels = ((data[2] & 0x01) << 2) | (data[3] >> 6)
    frame_length = ((data[3] & 0x03) << 11) | (data[4] << 3) | (data[5] >> 5)
    header_length = 7 if protection_absent else 9
    if sr_index >= len(SAMPLE_RATES):
        raise AdtsError("ADTS frame with a reserved sample-rate index")
    if frame_length < header_length:
        raise AdtsError("ADTS frame shorter than its header")
    return AdtsFrame(profile + 1, sr_index, channels, header_length, frame_length, (data[6] & 0x03) + 1)


def strip(data: bytes) -> tuple[AdtsFrame, bytes]:
    """The header and the raw access unit of one ADTS frame (one raw data block only)."""
    frame = parse_header(data)
    if frame.raw_blocks != 1:
        raise AdtsError("ADTS frames with several raw data blocks are not supported")
    end = min(frame.frame_length, len(data))
    return frame, data[frame.header_length : end]


def header_for(asc: bytes, payload_length: int) -> bytes:
    """A 7-byte ADTS header (no CRC) for a raw access unit described by ``asc``."""
    if len(asc) < 2:
        raise AdtsError("AudioSpecificConfig too short")
    bits = int.from_bytes(asc[:4].ljust(4, b"\x00"), "big")
    object_type = bits >> 27
    sr_index = (bits >> 23) & 0x0F
    channels = (bits >> 19) & 0x0F
    if object_type in _SBR_TYPES:  # HE-AAC signalled explicitly: ADTS carries the core (LC) layer
        object_type = 2
    if not 1 <= object_type <= 4 or sr_index >= len(SAMPLE_RATES) or channels > 7:
        raise AdtsError("this AudioSpecificConfig cannot be expressed as an ADTS header")
    length = payload_length + 7
    if length >= 1 << 13:
        raise AdtsError("AAC access unit too large for ADTS")
    header = bytearray(7)
    header[0] = 0xFF
    header[1] = 0xF1
    header[2] = ((object_type - 1) << 6) | (sr_index << 2) | (channels >> 2)
    header[3] = ((channels & 0x03) << 6) | (length >> 11)
    header[4] = (length >> 3) & 0xFF
    header[5] = ((length & 0x07) << 5) | 0x1F
    header[6] = 0xFC
    return bytes(header)
