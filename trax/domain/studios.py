"""Studios and their status state machine: offline → starting → live → stopping → offline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from trax.domain.base import Entity
from trax.domain.errors import Conflict
from trax.domain.program import ProgramSettings


class StudioStatus(StrEnum):
    OFFLINE = "offline"
    STARTING = "starting"
    LIVE = "live"
    STOPPING = "stopping"


_NEXT: dict[StudioStatus, frozenset[StudioStatus]] = {
    StudioStatus.OFFLINE: frozenset({StudioStatus.STARTING}),
    StudioStatus.STARTING: frozenset({StudioStatus.LIVE, StudioStatus.STOPPING}),
    StudioStatus.LIVE: frozenset({StudioStatus.STOPPING}),
    StudioStatus.STOPPING: frozenset({StudioStatus.OFFLINE}),
}


def check_transition(current: StudioStatus, target: StudioStatus) -> None:
    if target not in _NEXT[current]:
        raise Conflict(f"A studio cannot go from {current.value} to {target.value}.")


@dataclass(kw_only=True, slots=True)
class Studio(Entity):
    KIND = "studio"
    PREFIX = "studio"

    name: str
    description: str | None = None
    status: StudioStatus = StudioStatus.OFFLINE
    live_since: datetime | None = None
    program: ProgramSettings = field(default_factory=ProgramSettings)

    @property
    def is_on_air(self) -> bool:
        return self.status is not StudioStatus.OFFLINE
