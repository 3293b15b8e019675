"""What the use cases need from the outside world, gathered once by the runtime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from trax.domain.base import utcnow
from trax.domain.events import Event
from trax.domain.ids import IdGenerator
from trax.domain.keys import RateLimitOverride
from trax.domain.pages import CursorCodec
from trax.domain.stream import SourceMedia
from trax.interfaces import BlobStore, Broadcaster, EventBus, Platform, Storage


@dataclass(frozen=True, slots=True)
class MediaPolicy:
    max_upload_bytes: int = 5 * 1024**3
    allowed_content_types: tuple[str, ...] = (
        "video/mp4",
        "video/webm",
        "video/quicktime",
        "audio/mpeg",
        "audio/aac",
        "audio/ogg",
        "audio/wav",
        "image/png",
        "image/jpeg",
        "application/octet-stream",
    )
    upload_ttl_seconds: int = 3600
    max_recording_bytes: int = 200 * 1024**3


class IngestView(Protocol):
    """What the use cases may ask of this process's ingest plane (the runtime supplies the hub's)."""

    def media(self, path: str) -> SourceMedia | None:
        """Live media facts of the publisher on ``path``, or ``None`` when nobody publishes it here."""
        ...

    async def end_publisher(self, path: str, reason: str | None = None) -> bool:
        """End the session publishing ``path`` (its protocol drops the connection); False when there was none."""
        ...


@dataclass(slots=True)
class ServiceDeps:
    storage: Storage
    bus: EventBus
    blobs: BlobStore
    ids: IdGenerator
    server_key: bytes = field(repr=False)
    cursors: CursorCodec = field(repr=False)
    platforms: Mapping[str, Platform] = field(default_factory=dict)
    media: MediaPolicy = field(default_factory=MediaPolicy)
    broadcast: Broadcaster | None = None
    """Set by the runtime once built; ``None`` runs no programs (go-live only records the state)."""
    ingest: IngestView | None = None
    """Set by the runtime once the hub exists; ``None`` (tests, tools): no live media facts, nothing to end."""
    key_rate_cap: RateLimitOverride | None = None
    """The deployment's default bucket: the most a key may grant another through the keys API (``None``: no cap)."""

    def now(self) -> datetime:
        return utcnow()

    def bump(self, previous: datetime) -> datetime:
        """``updated_at`` for a change to an object last changed at ``previous``: now, but always later.

        Timestamps have millisecond precision and compare-and-set writes (``expect_updated_at``)
        compare them, so two changes within one millisecond must still leave different values.
        """
        now = self.now()
        return now if now > previous else previous + timedelta(milliseconds=1)

    def new_id(self, prefix: str) -> str:
        return self.ids.new(prefix)

    async def emit(self, type_: str, account_id: str, **data: object) -> None:
        event = Event(id=self.new_id("evt"), type=type_, account_id=account_id, occurred_at=self.now(), data=dict(data))
        await self.bus.publish(event)
