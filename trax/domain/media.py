from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from trax.domain.base import Entity


class AssetStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    """A recording still being written (its studio is live)."""
    READY = "ready"
    FAILED = "failed"


@dataclass(kw_only=True, slots=True)
class MediaAsset(Entity):
    KIND = "media_asset"
    PREFIX = "asset"

    name: str
    content_type: str
    size_bytes: int
    sha256: str | None = None
    status: AssetStatus = AssetStatus.PENDING
    blob_key: str | None = None
    duration_seconds: float | None = None
    origin_studio_id: str | None = None
    """Set on recordings: the studio whose program this is."""


@dataclass(kw_only=True, slots=True)
class Upload(Entity):
    """Where and how to send an asset's bytes; the URL carries a signed, expiring token."""

    KIND = "upload"
    PREFIX = "upl"

    asset_id: str
    expires_at: datetime
    max_bytes: int
    token_hash: str = field(repr=False)
    completed_at: datetime | None = None

    def unique_keys(self) -> dict[str, str]:
        return {"upload.token": self.token_hash}
