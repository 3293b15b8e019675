"""The program's fixed track layout: every consumer of a program path can rely on it.

Track 0 is H.264 video (Annex B, SPS/PPS before every keyframe), track 1 AAC
audio at 48 kHz stereo (raw access units, AudioSpecificConfig in the track's
extradata). Video timestamps are in 1/90000 s, audio in 1/48000 s.
"""

from __future__ import annotations

from fractions import Fraction

from trax.ingest.media import Track

VIDEO = 0
AUDIO = 1
VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_TIME_BASE = Fraction(1, 48000)
AUDIO_RATE = 48000
AUDIO_CHANNELS = 2
AAC_FRAME = 1024
AAC_LC_48K_STEREO = bytes([0x11, 0x90])
"""AudioSpecificConfig: AAC-LC (2), 48 kHz (index 3), 2 channels."""


def program_path(studio_id: str) -> str:
    return f"studios/{studio_id}/program"


def program_tracks(width: int, height: int) -> tuple[Track, Track]:
    return (
        Track(VIDEO, "video", "h264", VIDEO_TIME_BASE, width=width, height=height),
        Track(
            AUDIO,
            "audio",
            "aac",
            AUDIO_TIME_BASE,
            extradata=AAC_LC_48K_STEREO,
            sample_rate=AUDIO_RATE,
            channels=AUDIO_CHANNELS,
        ),
    )
