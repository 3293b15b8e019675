"""The program's encoders, set up once: H.264 for live output and AAC-LC at 48 kHz stereo.

The compositor, the slate and the audio conversion of a passthrough program all
encode to the program's fixed tracks (:mod:`trax.broadcast.tracks`) with these.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from trax.broadcast.tracks import AUDIO_RATE


def h264_encoder(width: int, height: int, fps: int, bitrate: int, *, preset: str = "veryfast") -> Any:
    """An open libx264 context for live output: CBR-ish ``bitrate``, 2 s GOP, no B-frames, SPS/PPS per keyframe."""
    import av

    video: Any = av.CodecContext.create("libx264", "w")
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.time_base = Fraction(1, fps)
    video.framerate = Fraction(fps, 1)
    video.bit_rate = bitrate
    video.gop_size = 2 * fps
    video.max_b_frames = 0  # pts == dts: every receiver (WebRTC included) plays it as it comes
    video.options = {
        "preset": preset,
        "tune": "zerolatency",
        "forced-idr": "1",  # a requested keyframe must be an IDR a new viewer can start on
        "x264-params": "repeat-headers=1",  # SPS/PPS before every keyframe: the canonical form
    }
    video.open()
    return video


def aac_encoder(bitrate: int) -> Any:
    """An open AAC-LC encoder at 48 kHz stereo (fltp, 1024-sample frames): the program's audio track."""
    import av

    audio: Any = av.CodecContext.create("aac", "w")
    audio.sample_rate, audio.layout, audio.format = AUDIO_RATE, "stereo", "fltp"
    audio.bit_rate = bitrate
    audio.time_base = Fraction(1, AUDIO_RATE)
    audio.open()
    return audio
