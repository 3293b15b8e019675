from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from trax.domain.destinations import DestinationStatus
from trax.domain.sources import SourceStatus
from trax.domain.studios import StudioStatus


@dataclass(frozen=True, slots=True)
class SourceState:
    id: str
    status: SourceStatus


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
