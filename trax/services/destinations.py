"""Destinations: where a studio's program goes. Stream keys are write-only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from trax.domain import events
from trax.domain.connections import Connection
from trax.domain.destinations import KNOWN_PLATFORMS, Destination, DestinationStatus
from trax.domain.errors import Conflict, InvalidRequest, NotFound
from trax.domain.pages import Page
from trax.interfaces import Delete, Update
from trax.services import validation
from trax.services.deps import ServiceDeps
from trax.services.paging import keyset_page
from trax.services.principal import Principal
from trax.services.studios import insert_child, load_studio

_WRITABLE = ("name", "platform", "connectionId", "enabled", "rtmpUrl", "streamKey", "srtUrl", "streamid", "passphrase")
_SECRET_FIELDS = {"streamKey": "stream_key", "streamid": "srt_streamid", "passphrase": "srt_passphrase"}
_SRT_QUERY = {"streamid": "srt_streamid", "passphrase": "srt_passphrase"}


def _rtmp_url(value: Any) -> str:
    url = validation.text(value, "rtmpUrl", max_len=2048)
    parts = urlsplit(url)
    if parts.scheme not in ("rtmp", "rtmps") or not parts.hostname:
        raise InvalidRequest("rtmpUrl must be an rtmp:// or rtmps:// URL with a host.", param="rtmpUrl")
    return url


def _srt_url(value: Any) -> tuple[str, dict[str, str]]:
    """``srt://host:port`` and the secrets its query carried (``streamid``, ``passphrase``), kept apart."""
    url = validation.text(value, "srtUrl", max_len=2048)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "srt" or not parts.hostname or port is None or "@" in parts.netloc:
        raise InvalidRequest("srtUrl must be an srt://host:port URL.", param="srtUrl")
    secrets: dict[str, str] = {}
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        if name not in _SRT_QUERY or len(values) != 1:
            raise InvalidRequest("srtUrl takes only streamid and passphrase in its query.", param="srtUrl")
        secrets[_SRT_QUERY[name]] = values[0]
    return urlunsplit(("srt", parts.netloc, "", "", "")), secrets


def _passphrase(value: Any) -> str:
    # libsrt takes 10..79 characters; anything else would only fail at connect time
    return validation.text(value, "passphrase", min_len=10, max_len=79)


class DestinationService:
    def __init__(self, deps: ServiceDeps) -> None:
        self._d = deps

    async def _load(self, actor: Principal, studio_id: str, destination_id: str) -> Destination:
        await load_studio(self._d, actor.account_id, studio_id)
        dst = await self._d.storage.get(Destination, actor.account_id, destination_id)
        if dst is None or dst.studio_id != studio_id:
            raise NotFound("No such destination.")
        return dst

    async def _check_connection(self, actor: Principal, connection_id: Any, platform: str) -> str | None:
        if connection_id is None:
            return None
        if not isinstance(connection_id, str):
            raise InvalidRequest("connectionId must be a string.", param="connectionId")
        conn = await self._d.storage.get(Connection, actor.account_id, connection_id)
        if conn is None:
            raise InvalidRequest("connectionId names no connection of this account.", param="connectionId")
        if conn.platform != platform:
            raise InvalidRequest("The connection is for another platform.", param="connectionId")
        return connection_id

    def _check(self, fields: dict[str, Any]) -> None:
        platform = fields["platform"]
        if platform == "custom_rtmp":
            if not fields.get("rtmp_url"):
                raise InvalidRequest("A custom_rtmp destination needs rtmpUrl.", param="rtmpUrl")
            if not fields.get("stream_key"):
                raise InvalidRequest("A custom_rtmp destination needs streamKey.", param="streamKey")
        elif fields.get("rtmp_url") is not None or fields.get("stream_key") is not None:
            raise InvalidRequest("rtmpUrl and streamKey are only for custom_rtmp.", param="rtmpUrl")
        if platform == "custom_srt":
            if not fields.get("srt_url"):
                raise InvalidRequest("A custom_srt destination needs srtUrl.", param="srtUrl")
        elif any(fields.get(k) is not None for k in ("srt_url", "srt_streamid", "srt_passphrase")):
            raise InvalidRequest("srtUrl, streamid and passphrase are only for custom_srt.", param="srtUrl")

    def _read_fields(self, body: Mapping[str, Any], fields: dict[str, Any]) -> None:
        """The URL and secret fields ``body`` names, checked, into ``fields`` (domain names)."""
        if "rtmpUrl" in body:
            fields["rtmp_url"] = None if body["rtmpUrl"] is None else _rtmp_url(body["rtmpUrl"])
        if "streamKey" in body:
            key = body["streamKey"]
            fields["stream_key"] = None if key is None else validation.text(key, "streamKey", max_len=512)
        if "srtUrl" in body:
            fields["srt_url"] = None
            if body["srtUrl"] is not None:
                fields["srt_url"], from_query = _srt_url(body["srtUrl"])
                fields.update(from_query)
        if "streamid" in body:
            sid = body["streamid"]
            fields["srt_streamid"] = None if sid is None else validation.text(sid, "streamid", max_len=512)
        if "passphrase" in body:
            fields["srt_passphrase"] = body["passphrase"]
        if fields.get("srt_passphrase") is not None:
            fields["srt_passphrase"] = _passphrase(fields["srt_passphrase"])

    def _notify(self, dst: Destination) -> None:
        if self._d.broadcast is not None:
            self._d.broadcast.changed(dst.account_id, dst.studio_id)

    async def create(self, actor: Principal, studio_id: str, body: Mapping[str, Any]) -> Destination:
        actor.require("destinations:write")
        validation.only_fields(body, _WRITABLE)
        await load_studio(self._d, actor.account_id, studio_id)
        platform = body.get("platform")
        if not isinstance(platform, str) or (platform not in KNOWN_PLATFORMS and platform not in self._d.platforms):
            raise InvalidRequest("platform is not supported on this deployment.", param="platform")
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InvalidRequest("enabled must be a boolean.", param="enabled")
        fields: dict[str, Any] = {
            "name": validation.text(body.get("name"), "name", max_len=100),
            "platform": platform,
            "enabled": enabled,
            "connection_id": await self._check_connection(actor, body.get("connectionId"), str(platform)),
        }
        self._read_fields(body, fields)
        self._check(fields)
        now = self._d.now()
        dst = Destination(
            id=self._d.new_id("dst"),
            account_id=actor.account_id,
            created_at=now,
            updated_at=now,
            studio_id=studio_id,
            **fields,
        )
        await insert_child(self._d, dst)
        self._notify(dst)
        return dst

    async def list(
        self, actor: Principal, studio_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Destination]:
        actor.require("destinations:read")
        await load_studio(self._d, actor.account_id, studio_id)
        return await keyset_page(
            self._d, Destination, actor.account_id, parent_id=studio_id, limit=limit, cursor=cursor
        )

    async def get(self, actor: Principal, studio_id: str, destination_id: str) -> Destination:
        actor.require("destinations:read")
        return await self._load(actor, studio_id, destination_id)

    async def update(
        self, actor: Principal, studio_id: str, destination_id: str, changes: Mapping[str, Any]
    ) -> Destination:
        actor.require("destinations:write")
        validation.only_fields(changes, _WRITABLE)
        dst = await self._load(actor, studio_id, destination_id)
        if "platform" in changes and changes["platform"] != dst.platform:
            raise InvalidRequest("platform cannot be changed; create a new destination.", param="platform")
        fields: dict[str, Any] = {
            "name": dst.name,
            "platform": dst.platform,
            "enabled": dst.enabled,
            "connection_id": dst.connection_id,
            "rtmp_url": dst.rtmp_url,
            "stream_key": dst.stream_key,
            "srt_url": dst.srt_url,
            "srt_streamid": dst.srt_streamid,
            "srt_passphrase": dst.srt_passphrase,
        }
        if "name" in changes:
            fields["name"] = validation.text(changes["name"], "name", max_len=100)
        if "enabled" in changes:
            if not isinstance(changes["enabled"], bool):
                raise InvalidRequest("enabled must be a boolean.", param="enabled")
            fields["enabled"] = changes["enabled"]
        if "connectionId" in changes:
            fields["connection_id"] = await self._check_connection(actor, changes["connectionId"], dst.platform)
        self._read_fields(changes, fields)
        self._check(fields)
        updated = replace(dst, **fields, updated_at=self._d.bump(dst.updated_at))
        await self._d.storage.apply([Update(updated)])
        self._notify(updated)
        return updated

    async def delete(self, actor: Principal, studio_id: str, destination_id: str) -> None:
        actor.require("destinations:write")
        dst = await self._load(actor, studio_id, destination_id)
        await self._d.storage.apply([Delete(Destination, actor.account_id, dst.id)])
        self._notify(dst)

    async def set_status(
        self,
        account_id: str,
        destination_id: str,
        status: DestinationStatus,
        error: str | None = None,
        *,
        code: str | None = None,
    ) -> Destination | None:
        """Record what an egress saw (``code`` names an error); emits ``destination.status_changed`` on change.

        The write is a compare-and-set on the row just read, retried, so a concurrent edit of the
        destination (its URL, its key) is never overwritten with the values read before it.
        """
        for _ in range(5):
            dst = await self._d.storage.get(Destination, account_id, destination_id)
            if dst is None or (dst.status is status and dst.error == error and dst.error_code == code):
                return dst
            updated = replace(dst, status=status, error=error, error_code=code, updated_at=self._d.bump(dst.updated_at))
            try:
                await self._d.storage.apply([Update(updated, expect_updated_at=dst.updated_at)])
            except (Conflict, NotFound):
                continue
            await self._d.emit(
                events.DESTINATION_STATUS_CHANGED,
                account_id,
                studio_id=dst.studio_id,
                destination_id=dst.id,
                status=status.value,
                error={"code": code, "message": error} if error or code else None,
            )
            return updated
        return None
