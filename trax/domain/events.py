"""Domain events: what changed, for whom, and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STREAM_LIVE = "stream.live"
STREAM_OFFLINE = "stream.offline"
SOURCE_STATUS_CHANGED = "source.status_changed"
DESTINATION_STATUS_CHANGED = "destination.status_changed"
CHAT_MESSAGE = "chat.message"

EVENT_TYPES = (STREAM_LIVE, STREAM_OFFLINE, SOURCE_STATUS_CHANGED, DESTINATION_STATUS_CHANGED, CHAT_MESSAGE)


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    account_id: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
