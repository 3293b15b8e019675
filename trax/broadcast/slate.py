"""What the program shows and plays when it has nothing else: a slate picture and silence, pre-encoded once.

The slate is a short H.264 clip of one picture (black, or the first picture of
a media asset) at the program's size and frame rate, and silence is AAC-LC
frames of zeros. A passthrough program loops them with its own timestamps, so
showing the slate costs no encoding while the studio is live. Encoding blocks:
call these in a worker thread.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from trax.broadcast.encoders import aac_encoder, h264_encoder
from trax.broadcast.tracks import AAC_FRAME, AUDIO, AUDIO_RATE, AUDIO_TIME_BASE, VIDEO, VIDEO_TIME_BASE
from trax.domain.program import OutputSettings
from trax.ingest.media import H264ParameterSets, Packet

SLATE_BITRATE = 500_000
"""A still picture needs little."""
BLACK_YUV = (16, 128, 128)
"""Black in limited-range YUV."""


def encode_slate_video(output: OutputSettings, picture: Any | None = None, seconds: float = 1.0) -> list[Packet]:
    """``seconds`` of ``picture`` (a PyAV ``VideoFrame``; black when ``None``) as canonical H.264.

    The first packet is a keyframe with SPS/PPS in front; timestamps start at 0 in 1/90000 s.
    """
    width, height, fps = max(2, output.width & ~1), max(2, output.height & ~1), max(1, output.fps)
    encoder = h264_encoder(width, height, fps, min(SLATE_BITRATE, output.video_bitrate))
    frame = _slate_frame(width, height, picture)
    raw: list[Any] = []
    for index in range(max(1, round(seconds * fps))):
        frame.pts = index
        raw.extend(encoder.encode(frame))
    raw.extend(encoder.encode(None))
    params = H264ParameterSets()
    packets: list[Packet] = []
    for encoded in raw:
        data, key = params.canonical(bytes(encoded))
        ts = int(encoded.pts) * 90000 // fps
        packets.append(Packet(VIDEO, data, ts, ts, key))
    return packets


def _slate_frame(width: int, height: int, picture: Any | None) -> Any:
    import av

    if picture is not None:
        return picture.reformat(width=width, height=height, format="yuv420p")
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, BLACK_YUV, strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


def silence_frames(bitrate: int, count: int) -> list[bytes]:
    """``count`` raw AAC frames (1024 samples, 48 kHz stereo) of silence; the encoder's priming is silence too."""
    import av
    import numpy as np

    encoder = aac_encoder(bitrate)
    zeros = np.zeros((2, AAC_FRAME), dtype=np.float32)
    data: list[bytes] = []
    for index in range(count):
        frame = av.AudioFrame.from_ndarray(zeros, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = AUDIO_RATE, index * AAC_FRAME
        data.extend(bytes(p) for p in encoder.encode(frame))
    data.extend(bytes(p) for p in encoder.encode(None))
    return data[:count]


def encode_silence(bitrate: int = 128_000) -> bytes:
    """One AAC-LC frame of silence (past the encoder's priming), for a program to repeat."""
    return silence_frames(bitrate, 4)[-1]


def silence_packet(data: bytes, pts: int) -> Packet:
    return Packet(AUDIO, data, pts, pts, True)


def encode_slate(output: OutputSettings, seconds: float = 1.0) -> list[Packet]:
    """``seconds`` of black and silence as program packets, keyframe first, timestamps from 0, in time order."""
    video = encode_slate_video(output, None, seconds)
    fps = max(1, output.fps)
    # whole AAC frames covering the picture's duration: a loop never runs short of sound
    count = math.ceil(len(video) * AUDIO_RATE / (fps * AAC_FRAME))
    audio = [silence_packet(d, k * AAC_FRAME) for k, d in enumerate(silence_frames(output.audio_bitrate, count))]
    return sorted(video + audio, key=_time_order)


def _time_order(packet: Packet) -> tuple[Fraction, int]:
    return packet.dts * (VIDEO_TIME_BASE if packet.track == VIDEO else AUDIO_TIME_BASE), packet.track
