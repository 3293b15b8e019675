from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trax.domain.destinations import DestinationStatus
from trax.domain.sources import SourceKind, SourceStatus
from trax.domain.studios import StudioStatus


@dataclass(frozen=True, slots=True)
class SourceMedia:
    """What a live source's publisher is sending, as this process's ingest hub sees it (``None``: unknown)."""

    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate: int | None = None
    """Bits per second over the publish so far, every track together."""
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None


@dataclass(frozen=True, slots=True)
class SourceState:
    id: str
    status: SourceStatus
    name: str = ""
    kind: SourceKind | None = None
    reason: str | None = None
    """Why the source is in ``error``, as the ingest plane recorded it."""
    media: SourceMedia | None = None
    """Live media facts while a publisher is on the source's path in this process."""


@dataclass(frozen=True, slots=True)
class DestinationState:
    id: str
    status: DestinationStatus
    error: str | None = None
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class ProgramState:
    """The program pipeline as this process runs it: ``stopped``, ``starting``, ``running``, ``error``."""

    status: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A studio's on-air state with its sources and destinations, as /v1 reports it."""

    studio_id: str
    status: StudioStatus
    live_since: datetime | None
    updated_at: datetime
    sources: tuple[SourceState, ...]
    destinations: tuple[DestinationState, ...]
    program: ProgramState | None = None
