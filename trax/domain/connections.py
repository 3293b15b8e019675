from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from trax.domain.base import Entity


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(kw_only=True, slots=True)
class Connection(Entity):
    """A linked platform account; linking happens through platform plugins, not /v1."""

    KIND = "connection"
    PREFIX = "conn"

    platform: str
    display_name: str
    external_account_id: str
    status: ConnectionStatus = ConnectionStatus.ACTIVE
    linked_at: datetime
