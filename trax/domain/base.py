"""What every stored object has in common."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

SYSTEM_ACCOUNT = "_system"
"""Owner of deployment-wide records (signing keys, ...) that belong to no tenant."""


def utcnow() -> datetime:
    """Now, in UTC, at millisecond precision (the precision of the wire format)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(kw_only=True, slots=True)
class Entity:
    """A tenant-owned object. ``KIND`` names its collection in storage."""

    KIND: ClassVar[str] = ""
    PREFIX: ClassVar[str] = ""

    id: str
    account_id: str
    created_at: datetime
    updated_at: datetime

    @property
    def parent_id(self) -> str | None:
        """The owning object (e.g. a source's studio), used to scope list queries."""
        return None

    def unique_keys(self) -> dict[str, str]:
        """Deployment-wide unique values, by index name; storage refuses duplicates."""
        return {}
