from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from trax.domain.base import Entity


class DestinationStatus(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    LIVE = "live"
    ERROR = "error"


KNOWN_PLATFORMS = ("youtube", "twitch", "facebook", "custom_rtmp", "custom_srt")
CUSTOM_PLATFORMS = ("custom_rtmp", "custom_srt")
"""Platforms whose ingest target is given on the destination itself, not by a platform plugin."""


@dataclass(kw_only=True, slots=True)
class Destination(Entity):
    KIND = "destination"
    PREFIX = "dst"

    studio_id: str
    name: str
    platform: str
    connection_id: str | None = None
    enabled: bool = True
    status: DestinationStatus = DestinationStatus.IDLE
    error: str | None = None
    """What went wrong, in words (no secrets); ``error_code`` says it for programs."""
    error_code: str | None = None
    # May carry user-info (rtmp://user:password@host/...): kept out of reprs, shown via public_rtmp_url.
    rtmp_url: str | None = field(default=None, repr=False)
    # Write-only: kept to push to the platform, never returned or shown.
    stream_key: str | None = field(default=None, repr=False)
    # custom_srt: srt://host:port (no query); the stream id and passphrase are write-only.
    srt_url: str | None = None
    srt_streamid: str | None = field(default=None, repr=False)
    srt_passphrase: str | None = field(default=None, repr=False)

    @property
    def parent_id(self) -> str | None:
        return self.studio_id

    @property
    def stream_key_hint(self) -> str | None:
        return self.stream_key[-4:] if self.stream_key else None

    @property
    def public_rtmp_url(self) -> str | None:
        return strip_userinfo(self.rtmp_url) if self.rtmp_url else None


def strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
