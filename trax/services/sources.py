"""Sources: CRUD, stream keys, and status as the ingest plane reports it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trax.domain import events
from trax.domain.errors import InvalidRequest, NotFound
from trax.domain.keys import hash_secret
from trax.domain.media import MediaAsset
from trax.domain.pages import Page
from trax.domain.paths import new_source_path
from trax.domain.sources import Source, SourceKind, SourceStatus
from trax.interfaces import Delete, Update
from trax.services import validation
from trax.services.deps import ServiceDeps
from trax.services.paging import keyset_page
from trax.services.principal import Principal
from trax.services.studios import insert_child, load_studio

STREAM_KEY_PREFIX = "live_"


def stream_key_hash(key: str, server_key: bytes) -> str:
    return hash_secret("streamkey:" + key, server_key)


def stream_key_challenge_digest(key: str, salt: str) -> str:
    """What RTMP's authmod=adobe challenge checks against (user and password are both the key)."""
    return base64.b64encode(hashlib.md5((key + salt + key).encode(), usedforsecurity=False).digest()).decode()


class SourceService:
    def __init__(self, deps: ServiceDeps) -> None:
        self._d = deps

    async def _load(self, actor: Principal, studio_id: str, source_id: str) -> Source:
        await load_studio(self._d, actor.account_id, studio_id)
        src = await self._d.storage.get(Source, actor.account_id, source_id)
        if src is None or src.studio_id != studio_id:
            raise NotFound("No such source.")
        return src

    async def create(
        self,
        actor: Principal,
        studio_id: str,
        *,
        name: str,
        kind: str,
        media_asset_id: str | None = None,
    ) -> Source:
        actor.require("sources:write")
        try:
            source_kind = SourceKind(kind)
        except ValueError:
            raise InvalidRequest("kind must be one of srt, rtmp, whip, media.", param="kind") from None
        name = validation.text(name, "name", max_len=100)
        await load_studio(self._d, actor.account_id, studio_id)
        if source_kind is SourceKind.MEDIA:
            if not media_asset_id:
                raise InvalidRequest("A media source needs mediaAssetId.", param="mediaAssetId")
            if await self._d.storage.get(MediaAsset, actor.account_id, media_asset_id) is None:
                raise InvalidRequest("mediaAssetId names no asset of this account.", param="mediaAssetId")
        elif media_asset_id is not None:
            raise InvalidRequest("mediaAssetId is only for kind 'media'.", param="mediaAssetId")
        now = self._d.now()
        src = Source(
            id=self._d.new_id("src"),
            account_id=actor.account_id,
            created_at=now,
            updated_at=now,
            studio_id=studio_id,
            name=name,
            kind=source_kind,
            path=new_source_path(source_kind.value),
            media_asset_id=media_asset_id,
        )
        await insert_child(self._d, src)
        self._notify(src)
        return src

    def _notify(self, src: Source) -> None:
        # a live program places every source by default, and a media source plays only while live
        if self._d.broadcast is not None:
            self._d.broadcast.changed(src.account_id, src.studio_id)

    async def list(
        self, actor: Principal, studio_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Source]:
        actor.require("sources:read")
        await load_studio(self._d, actor.account_id, studio_id)
        return await keyset_page(self._d, Source, actor.account_id, parent_id=studio_id, limit=limit, cursor=cursor)

    async def get(self, actor: Principal, studio_id: str, source_id: str) -> Source:
        actor.require("sources:read")
        return await self._load(actor, studio_id, source_id)

    async def update(self, actor: Principal, studio_id: str, source_id: str, changes: Mapping[str, Any]) -> Source:
        actor.require("sources:write")
        validation.only_fields(changes, ("name", "loop", "playing"))
        src = await self._load(actor, studio_id, source_id)
        fields: dict[str, Any] = {}
        if "name" in changes:
            fields["name"] = validation.text(changes["name"], "name", max_len=100)
        for flag in ("loop", "playing"):
            if flag not in changes:
                continue
            if src.kind is not SourceKind.MEDIA:
                raise InvalidRequest(f"{flag} is only for media sources.", param=flag)
            if not isinstance(changes[flag], bool):
                raise InvalidRequest(f"{flag} must be a boolean.", param=flag)
            fields[flag] = changes[flag]
        if not fields:
            return src
        updated = replace(src, **fields, updated_at=self._d.bump(src.updated_at))
        await self._d.storage.apply([Update(updated)])
        if "loop" in fields or "playing" in fields:
            self._notify(updated)
        return updated

    async def delete(self, actor: Principal, studio_id: str, source_id: str) -> None:
        actor.require("sources:write")
        src = await self._load(actor, studio_id, source_id)
        await self._d.storage.apply([Delete(Source, actor.account_id, src.id)])
        self._notify(src)

    async def rotate_stream_key(self, actor: Principal, studio_id: str, source_id: str) -> tuple[Source, str]:
        """Issue a new static stream key (the old one stops working); shown once."""
        actor.require("sources:write")
        src = await self._load(actor, studio_id, source_id)
        if src.kind is SourceKind.MEDIA:
            raise InvalidRequest("A media source plays an asset; it takes no encoder and has no stream key.")
        key = STREAM_KEY_PREFIX + secrets.token_urlsafe(24)
        salt = secrets.token_urlsafe(12)
        updated = replace(
            src,
            stream_key_hash=stream_key_hash(key, self._d.server_key),
            stream_key_salt=salt,
            stream_key_digest=stream_key_challenge_digest(key, salt),
            updated_at=self._d.bump(src.updated_at),
        )
        await self._d.storage.apply([Update(updated)])
        # the old key stops at once: new connections fail the lookup above, and the session on the
        # path is ended here (the hub does not record which credential opened it, so a token-opened
        # session ends too; its encoder reconnects with its token)
        if self._d.ingest is not None:
            await self._d.ingest.end_publisher(src.path, None)
        return updated, key

    # --- used by the ingest plane (no tenant credential: it acts for the path) ---

    async def by_path(self, path: str) -> Source | None:
        return await self._d.storage.find_unique(Source, "source.path", path)

    async def by_stream_key(self, key: str) -> Source | None:
        return await self._d.storage.find_unique(Source, "source.stream_key", stream_key_hash(key, self._d.server_key))

    async def set_status(self, path: str, status: SourceStatus, reason: str | None = None) -> Source | None:
        """Record what the ingest plane saw on a path; emits ``source.status_changed`` on change."""
        src = await self.by_path(path)
        if src is None:
            return None
        if src.status is status and src.status_reason == reason:
            return src
        updated = replace(src, status=status, status_reason=reason, updated_at=self._d.bump(src.updated_at))
        try:
            await self._d.storage.apply([Update(updated)])
        except NotFound:  # deleted while streaming: nothing to record
            return None
        await self._d.emit(
            events.SOURCE_STATUS_CHANGED,
            src.account_id,
            studio_id=src.studio_id,
            source_id=src.id,
            path=path,
            status=status.value,
            previous=src.status.value,
            reason=reason,
        )
        return updated
