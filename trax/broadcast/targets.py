"""Where a destination's program goes: its own URL (custom_rtmp, custom_srt) or its platform's answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from trax.domain.connections import Connection
from trax.domain.destinations import Destination
from trax.interfaces import IngestPlatform, IngestTarget, Platform, Storage
from trax.redaction import scrub

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Unreachable:
    """Why a destination has nowhere to push to (its status becomes ``error`` with this)."""

    code: str
    message: str


def rtmp_publish_url(url: str, stream_key: str | None) -> str:
    """``rtmp://host/app`` + key → the URL an encoder publishes to (``rtmp://host/app/key``)."""
    if not stream_key:
        return url
    return f"{url.rstrip('/')}/{stream_key}"


def kind_of(url: str) -> Literal["rtmp", "srt"] | None:
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("rtmp", "rtmps"):
        return "rtmp"
    if scheme == "srt":
        return "srt"
    return None


async def resolve(
    dst: Destination, platforms: dict[str, Platform], storage: Storage
) -> tuple[Literal["rtmp", "srt"], IngestTarget] | Unreachable:
    """The ingest target of ``dst``: its own fields, or what its platform plugin says for its connection."""
    if dst.platform == "custom_rtmp" and dst.rtmp_url:
        return "rtmp", IngestTarget(url=rtmp_publish_url(dst.rtmp_url, dst.stream_key))
    if dst.platform == "custom_srt" and dst.srt_url:
        return "srt", IngestTarget(url=dst.srt_url, streamid=dst.srt_streamid, passphrase=dst.srt_passphrase)
    platform = platforms.get(dst.platform)
    if not isinstance(platform, IngestPlatform):
        return Unreachable("platform_unsupported", f"The {dst.platform} platform cannot take a program here.")
    if dst.connection_id is None:
        return Unreachable("no_connection", "The destination has no linked platform account.")
    conn = await storage.get(Connection, dst.account_id, dst.connection_id)
    if conn is None:
        return Unreachable("no_connection", "The linked platform account was removed.")
    try:
        target = await platform.ingest_target(conn)
    except Exception as exc:  # a plugin's failure is the destination's status, never the studio's
        log.warning("platform %s: no ingest target for %s: %s", dst.platform, dst.id, scrub(str(exc)))
        return Unreachable("platform_error", f"The {dst.platform} platform gave no ingest address.")
    kind = kind_of(target.url)
    if kind is None:
        return Unreachable("platform_error", f"The {dst.platform} platform gave an address trax cannot push to.")
    if kind == "rtmp":
        return kind, IngestTarget(url=rtmp_publish_url(target.url, target.stream_key))
    return kind, target
