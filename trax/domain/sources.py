from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from trax.domain.base import Entity


class SourceKind(StrEnum):
    SRT = "srt"
    RTMP = "rtmp"
    WHIP = "whip"
    MEDIA = "media"


class SourceStatus(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    LIVE = "live"
    ERROR = "error"


PROTOCOLS_BY_KIND: dict[SourceKind, tuple[str, ...]] = {
    SourceKind.SRT: ("srt",),
    SourceKind.RTMP: ("rtmp", "rtmps"),
    SourceKind.WHIP: ("whip",),
    SourceKind.MEDIA: (),
}


@dataclass(kw_only=True, slots=True)
class Source(Entity):
    KIND = "source"
    PREFIX = "src"

    studio_id: str
    name: str
    kind: SourceKind
    path: str
    status: SourceStatus = SourceStatus.IDLE
    status_reason: str | None = None
    media_asset_id: str | None = None
    # media sources: how the asset plays into the path while the studio is live
    loop: bool = False
    playing: bool = True
    # Static stream key credential (docs/ingest.md): a keyed hash for lookup, never the key.
    stream_key_hash: str | None = field(default=None, repr=False)
    # RTMP's authmod=adobe challenge needs a per-key salt and b64(md5(key + salt + key)), not the key.
    stream_key_salt: str | None = field(default=None, repr=False)
    stream_key_digest: str | None = field(default=None, repr=False)

    @property
    def parent_id(self) -> str | None:
        return self.studio_id

    @property
    def protocols(self) -> tuple[str, ...]:
        return PROTOCOLS_BY_KIND[self.kind]

    def unique_keys(self) -> dict[str, str]:
        keys = {"source.path": self.path}
        if self.stream_key_hash:
            keys["source.stream_key"] = self.stream_key_hash
        return keys
