"""Plain objects and rules. Nothing here imports a framework or does I/O."""

from trax.domain.accounts import Account
from trax.domain.base import SYSTEM_ACCOUNT, Entity, utcnow
from trax.domain.chat import ChatDirection, ChatMessage
from trax.domain.connections import Connection, ConnectionStatus
from trax.domain.destinations import Destination, DestinationStatus
from trax.domain.events import Event
from trax.domain.keys import ApiKey, RateLimitOverride
from trax.domain.media import AssetStatus, MediaAsset, Upload
from trax.domain.pages import Page
from trax.domain.sources import Source, SourceKind, SourceStatus
from trax.domain.stream import StreamStatus
from trax.domain.studios import Studio, StudioStatus

ENTITY_TYPES: dict[str, type[Entity]] = {
    cls.KIND: cls for cls in (Account, ApiKey, Studio, Source, Destination, Connection, ChatMessage, MediaAsset, Upload)
}

__all__ = [
    "ENTITY_TYPES",
    "SYSTEM_ACCOUNT",
    "Account",
    "ApiKey",
    "AssetStatus",
    "ChatDirection",
    "ChatMessage",
    "Connection",
    "ConnectionStatus",
    "Destination",
    "DestinationStatus",
    "Entity",
    "Event",
    "MediaAsset",
    "Page",
    "RateLimitOverride",
    "Source",
    "SourceKind",
    "SourceStatus",
    "StreamStatus",
    "Studio",
    "StudioStatus",
    "Upload",
    "utcnow",
]
