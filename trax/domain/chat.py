from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from trax.domain.base import Entity

MAX_CHAT_TEXT = 2000


class ChatDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(kw_only=True, slots=True)
class ChatMessage(Entity):
    KIND = "chat_message"
    PREFIX = "msg"

    studio_id: str
    text: str
    direction: ChatDirection
    platform: str
    connection_id: str | None = None
    author_name: str
    author_external_id: str | None = None
    sent_at: datetime

    @property
    def parent_id(self) -> str | None:
        return self.studio_id
