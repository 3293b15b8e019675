"""A studio's program: which sources make it, how they are laid out, what it is encoded to."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Layout(StrEnum):
    SINGLE = "single"
    SIDE_BY_SIDE = "side_by_side"
    GRID = "grid"
    PIP = "pip"


MAX_PROGRAM_SOURCES = 9
MIN_SIZE = (160, 90)
MAX_SIZE = (3840, 2160)
FPS_RANGE = (1, 60)
BITRATE_RANGE = (100_000, 50_000_000)
SLATE_BLACK = "black"


@dataclass(frozen=True, slots=True)
class OutputSettings:
    """What a composite (or transcoded) program is encoded to: H.264 + AAC, encoded once."""

    width: int = 1280
    height: int = 720
    fps: int = 30
    video_bitrate: int = 4_500_000
    audio_bitrate: int = 160_000


@dataclass(frozen=True, slots=True)
class ProgramSettings:
    layout: Layout = Layout.SINGLE
    sources: tuple[str, ...] | None = None
    """Placement order (for ``single`` the first is on air); ``None``: every source, in creation order."""
    output: OutputSettings = field(default_factory=OutputSettings)
    passthrough: bool = True
    """``single`` only: forward the on-air source's packets instead of decoding and encoding."""
    record: bool = False
    slate: str = SLATE_BLACK
    """``black`` or a media asset id, shown where a source has nothing to show."""

    @property
    def composited(self) -> bool:
        """Whether the program decodes its sources and encodes its own picture."""
        return self.layout is not Layout.SINGLE or not self.passthrough
