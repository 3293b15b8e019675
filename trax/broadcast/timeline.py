"""The program's clock: one continuous, strictly increasing timeline whatever goes on air.

Every stretch of packets from one origin (a source from a keyframe on, the
slate) is a *segment*. A segment's first video frame is placed one frame after
the last video frame sent, and everything else in the segment keeps its
distance from that frame, so a switch, a source that drops or comes back, or
the slate never makes the program's timestamps stall or go back. Destinations
(YouTube in particular) end a stream whose timestamps do.
"""

from __future__ import annotations

from fractions import Fraction

from trax.broadcast.tracks import AUDIO_TIME_BASE, VIDEO_TIME_BASE


class Timeline:
    def __init__(self, fps: int) -> None:
        self.frame = Fraction(1, fps)
        self.last_video: int | None = None
        """The dts of the last video packet sent, in 1/90000 s."""
        self.last_audio: int | None = None
        """The pts of the last audio packet sent, in 1/48000 s."""
        self._src_origin = Fraction(0)
        self._out_origin = Fraction(0)

    def begin(self, src_seconds: Fraction) -> None:
        """Start a segment whose first video frame is at ``src_seconds`` on its own clock."""
        self._src_origin = src_seconds
        self._out_origin = self.next_video_seconds()

    def next_video_seconds(self) -> Fraction:
        if self.last_video is None:
            return Fraction(0)
        return self.last_video * VIDEO_TIME_BASE + self.frame

    def video(self, pts_seconds: Fraction, dts_seconds: Fraction) -> tuple[int, int] | None:
        """(pts, dts) in 1/90000 s, or ``None`` when the frame would not come after the last one."""
        dts = round((dts_seconds - self._src_origin + self._out_origin) / VIDEO_TIME_BASE)
        if dts < 0 or (self.last_video is not None and dts <= self.last_video):
            return None
        pts = max(dts, round((pts_seconds - self._src_origin + self._out_origin) / VIDEO_TIME_BASE))
        self.last_video = dts
        return pts, dts

    def audio(self, pts_seconds: Fraction) -> int | None:
        """pts in 1/48000 s, or ``None`` when the frame would overlap the last one."""
        pts = round((pts_seconds - self._src_origin + self._out_origin) / AUDIO_TIME_BASE)
        return self.audio_at(pts)

    def audio_at(self, pts: int) -> int | None:
        if pts < 0 or (self.last_audio is not None and pts <= self.last_audio):
            return None
        self.last_audio = pts
        return pts

    def video_seconds(self) -> Fraction:
        """Where the program's picture is: the last video frame sent (0 before any)."""
        return Fraction(0) if self.last_video is None else self.last_video * VIDEO_TIME_BASE
