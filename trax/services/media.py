"""Media assets and their uploads: initiate, receive the bytes, check them, mark ready."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

from trax.domain.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from trax.domain.keyed_hash import keyed_hash
from trax.domain.media import AssetStatus, MediaAsset, Upload
from trax.domain.pages import Page
from trax.interfaces import Delete, Insert, Update
from trax.services import validation
from trax.services.deps import ServiceDeps
from trax.services.paging import keyset_page
from trax.services.principal import Principal

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _token_hash(token: str, server_key: bytes) -> str:
    return keyed_hash(server_key, token.encode(), person=b"trax-upload").hex()


class MediaService:
    def __init__(self, deps: ServiceDeps) -> None:
        self._d = deps

    async def list(self, actor: Principal, *, limit: int | None = None, cursor: str | None = None) -> Page[MediaAsset]:
        actor.require("media:read")
        return await keyset_page(self._d, MediaAsset, actor.account_id, limit=limit, cursor=cursor)

    async def get(self, actor: Principal, asset_id: str) -> MediaAsset:
        actor.require("media:read")
        asset = await self._d.storage.get(MediaAsset, actor.account_id, asset_id)
        if asset is None:
            raise NotFound("No such media asset.")
        return asset

    async def delete(self, actor: Principal, asset_id: str) -> None:
        actor.require("media:write")
        asset = await self._d.storage.get(MediaAsset, actor.account_id, asset_id)
        if asset is None:
            raise NotFound("No such media asset.")
        await self._d.storage.apply([Delete(MediaAsset, actor.account_id, asset.id)])
        if asset.blob_key:
            await self._d.blobs.delete(asset.blob_key)

    async def initiate_upload(
        self,
        actor: Principal,
        *,
        name: str,
        content_type: str,
        size_bytes: int,
        sha256: str | None = None,
    ) -> tuple[Upload, MediaAsset, str]:
        """A pending asset and an upload; the returned token goes into the signed URL only."""
        actor.require("media:write")
        policy = self._d.media
        name = validation.text(name, "name", max_len=255)
        if content_type not in policy.allowed_content_types:
            raise InvalidRequest(
                "contentType is not allowed; allowed: " + ", ".join(policy.allowed_content_types) + ".",
                param="contentType",
            )
        if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes < 1:
            raise InvalidRequest("sizeBytes must be a positive integer.", param="sizeBytes")
        if size_bytes > policy.max_upload_bytes:
            # a field over its limit is a failed constraint (400); 413 is for bytes actually sent
            raise InvalidRequest(f"sizeBytes exceeds the limit of {policy.max_upload_bytes} bytes.", param="sizeBytes")
        if sha256 is not None and not (isinstance(sha256, str) and _SHA256.match(sha256)):
            raise InvalidRequest("sha256 must be 64 lowercase hex characters.", param="sha256")
        now = self._d.now()
        asset = MediaAsset(
            id=self._d.new_id("asset"),
            account_id=actor.account_id,
            created_at=now,
            updated_at=now,
            name=name,
            content_type=content_type,
            size_bytes=size_bytes,
            sha256=sha256,
        )
        token = secrets.token_urlsafe(32)
        upload = Upload(
            id=self._d.new_id("upl"),
            account_id=actor.account_id,
            created_at=now,
            updated_at=now,
            asset_id=asset.id,
            expires_at=now + timedelta(seconds=policy.upload_ttl_seconds),
            max_bytes=size_bytes,
            token_hash=_token_hash(token, self._d.server_key),
        )
        await self._d.storage.apply([Insert(asset), Insert(upload)])
        return upload, asset, token

    async def receive_upload(self, upload_id: str, token: str, chunks: AsyncIterator[bytes]) -> MediaAsset:
        """Store the bytes sent to a signed upload URL; the asset turns ``ready`` if size and sha256 match.

        Each attempt writes under a blob key of its own and is promoted to the asset's bytes only by the
        compare-and-set that completes the upload, so concurrent PUTs to one URL (in this process or
        another) cannot overwrite or delete each other's bytes: the first to commit wins, the others get
        409 and remove only what they wrote. Attempts are not serialised: one stalled on a dead connection
        must not keep the client's retry out.
        """
        upload = await self._d.storage.find_unique(Upload, "upload.token", _token_hash(token, self._d.server_key))
        if upload is None or upload.id != upload_id:
            raise Unauthorized("The upload URL is invalid.")
        now = self._d.now()
        if upload.expires_at <= now:
            raise Unauthorized("The upload URL has expired.")
        if upload.completed_at is not None:
            raise Conflict("This upload is already complete.")
        asset = await self._d.storage.get(MediaAsset, upload.account_id, upload.asset_id)
        if asset is None:
            raise NotFound("The asset of this upload was deleted.")
        attempt_key = f"{asset.account_id}/{asset.id}_{secrets.token_hex(8)}"
        stored = await self._d.blobs.put(attempt_key, chunks, max_bytes=upload.max_bytes)
        problem = None
        if stored.size != asset.size_bytes:
            problem = f"Received {stored.size} bytes; the upload announced {asset.size_bytes}."
        elif asset.sha256 and stored.sha256 != asset.sha256:
            problem = "The bytes do not match the announced sha256."
        if problem:
            await self._d.blobs.delete(attempt_key)  # the client may try again until the URL expires
            raise InvalidRequest(problem, param="body")
        done = replace(
            asset,
            status=AssetStatus.READY,
            sha256=stored.sha256,
            blob_key=attempt_key,
            updated_at=self._d.bump(asset.updated_at),
        )
        finished = replace(upload, completed_at=now, updated_at=self._d.bump(upload.updated_at))
        try:
            await self._d.storage.apply(
                [
                    Update(done, expect_updated_at=asset.updated_at),
                    Update(finished, expect_updated_at=upload.updated_at),
                ]
            )
        except Conflict:
            await self._d.blobs.delete(attempt_key)
            raise Conflict("Another PUT to this upload URL completed first; these bytes were not kept.") from None
        except NotFound:
            await self._d.blobs.delete(attempt_key)
            raise NotFound("The asset of this upload was deleted.") from None
        # any other failure leaves the attempt's blob: whether the write committed is unknown, and an
        # unreferenced blob is a smaller harm than a ready asset without bytes
        return done

    # --- recordings (called by the broadcast, which acts for the studio, not for a caller) ---

    async def begin_recording(self, account_id: str, studio_id: str, studio_name: str) -> MediaAsset:
        """A ``processing`` asset for a recording of ``studio_id``'s program that starts now."""
        now = self._d.now()
        asset = MediaAsset(
            id=self._d.new_id("asset"),
            account_id=account_id,
            created_at=now,
            updated_at=now,
            name=f"{studio_name[:60]} {now:%Y-%m-%d %H:%M:%S} UTC.mp4",
            content_type="video/mp4",
            size_bytes=0,
            status=AssetStatus.PROCESSING,
            origin_studio_id=studio_id,
        )
        await self._d.storage.apply([Insert(asset)])
        return asset

    async def finish_recording(
        self, account_id: str, asset_id: str, chunks: AsyncIterator[bytes], *, duration_seconds: float | None
    ) -> MediaAsset | None:
        """Store a finished recording's bytes; the asset turns ``ready`` (``failed`` when nothing was recorded).

        ``None`` when the asset was deleted meanwhile (the bytes are not kept).
        """
        asset = await self._d.storage.get(MediaAsset, account_id, asset_id)
        if asset is None:
            return None
        blob_key = f"{account_id}/{asset.id}"
        stored = await self._d.blobs.put(blob_key, chunks, max_bytes=self._d.media.max_recording_bytes)
        status = AssetStatus.READY if stored.size > 0 else AssetStatus.FAILED
        done = replace(
            asset,
            status=status,
            size_bytes=stored.size,
            sha256=stored.sha256,
            blob_key=blob_key,
            duration_seconds=None if duration_seconds is None else round(duration_seconds, 3),
            updated_at=self._d.bump(asset.updated_at),
        )
        try:
            await self._d.storage.apply([Update(done, expect_updated_at=asset.updated_at)])
        except (Conflict, NotFound):  # deleted while its bytes were stored: do not leave them behind
            await self._d.blobs.delete(blob_key)
            return None
        return done

    async def asset_for_playback(self, account_id: str, asset_id: str) -> MediaAsset | None:
        """A ``ready`` asset with bytes, for a media source or a slate (no caller: the studio plays it)."""
        asset = await self._d.storage.get(MediaAsset, account_id, asset_id)
        if asset is None or asset.status is not AssetStatus.READY or not asset.blob_key:
            return None
        return asset
