"""What the program shows and plays when it has nothing else: a slate picture and silence, pre-encoded once.

The slate is a short H.264 clip (one GOP of the same picture at the program's
size and frame rate) and silence one AAC frame long. A passthrough program
loops them with its own timestamps, so showing the slate costs no encoding
while the studio is live.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from trax.broadcast.tracks import AAC_FRAME, AUDIO, AUDIO_CHANNELS, AUDIO_RATE, VIDEO, VIDEO_TIME_BASE
from trax.domain.program import OutputSettings
from trax.ingest.media import H264ParameterSets, Packet

SLATE_BITRATE = 500_000
"""A still picture needs little; the clip is encoded once per program."""


def encode_slate_video(output: OutputSettings, picture: Any | None = None) -> list[Packet]:
    """One second of ``picture`` (a PyAV ``VideoFrame``; black when ``None``) as canonical H.264.

    The first packet is a keyframe with SPS/PPS in front; timestamps start at 0 in 1/90000 s.
    """
    import av

    codec: Any = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = output.width, output.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, output.fps)
    codec.framerate = Fraction(output.fps, 1)
    codec.bit_rate = SLATE_BITRATE
    codec.gop_size = output.fps
    codec.max_b_frames = 0
    codec.options = {"preset": "veryfast", "tune": "zerolatency", "x264-params": "repeat-headers=1"}
    frame = _slate_frame(output, picture)
    params = H264ParameterSets()
    step = 90000 // output.fps
    packets: list[Packet] = []
    raw: list[Any] = []
    for i in range(output.fps):
        frame.pts = i
        frame.pict_type = av.video.frame.PictureType.I if i == 0 else av.video.frame.PictureType.NONE
        raw.extend(codec.encode(frame))
    raw.extend(codec.encode(None))
    for pkt in raw:
        data, key = params.canonical(bytes(pkt))
        ts = int(pkt.pts) * step
        packets.append(Packet(VIDEO, data, ts, ts, key))
    return packets


def _slate_frame(output: OutputSettings, picture: Any | None) -> Any:
    import av

    if picture is not None:
        return picture.reformat(width=output.width, height=output.height, format="yuv420p")
    frame = av.VideoFrame(output.width, output.height, "yuv420p")
    # black in limited-range YUV: Y=16, U=V=128
    for plane, value in zip(frame.planes, (16, 128, 128), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


def encode_silence(bitrate: int = 128_000) -> bytes:
    """One AAC-LC frame (1024 samples, 48 kHz stereo) of silence, raw (no ADTS)."""
    import av

    codec: Any = av.CodecContext.create("aac", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "fltp"
    codec.bit_rate = bitrate
    codec.time_base = Fraction(1, AUDIO_RATE)
    out: list[bytes] = []
    for i in range(4):  # the encoder's first frames carry its priming; a later one is plain silence
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=AAC_FRAME)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = AUDIO_RATE
        frame.pts = i * AAC_FRAME
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out[-1]


def silence_packet(data: bytes, pts: int) -> Packet:
    return Packet(AUDIO, data, pts, pts, True)


__all__ = ["AUDIO_CHANNELS", "VIDEO_TIME_BASE", "encode_silence", "encode_slate_video", "silence_packet"]
