"""``/v1/media``: assets, upload initiation, and the signed upload URL that takes the bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from trax.domain.errors import InvalidRequest, Unauthorized
from trax.server.routes import Actor, Cursor, Limit, Rt, Svc, created, route
from trax.server.wire import MediaAssetOut, MediaAssetPage, UploadCreate, UploadOut, asset_out, upload_out

UploadToken = Annotated[str | None, QueryParameter(description="The signed token from Upload.url.")]


def base_url(rt: Rt, request: Request[Any, Any, Any]) -> str:
    configured = rt.settings.server.public_url
    return (configured or str(request.base_url)).rstrip("/")


class MediaController(Controller):
    path = "/media"
    tags = ["media"]

    @get("/", **route("listMediaAssets", "media:read", summary="List media assets"))
    async def list_assets(self, svc: Svc, actor: Actor, limit: Limit = 50, cursor: Cursor = "") -> MediaAssetPage:
        page = await svc.media.list(actor, limit=limit, cursor=cursor)
        return MediaAssetPage(data=[asset_out(a) for a in page.data], next_cursor=page.next_cursor)

    @get("/{assetId:str}", **route("getMediaAsset", "media:read", summary="Get a media asset"))
    async def get_asset(self, svc: Svc, actor: Actor, assetId: FromPath[str]) -> MediaAssetOut:
        return asset_out(await svc.media.get(actor, assetId))

    @delete(
        "/{assetId:str}",
        status_code=204,
        **route("deleteMediaAsset", "media:write", summary="Delete a media asset", mutating=True),
    )
    async def delete_asset(self, svc: Svc, actor: Actor, assetId: FromPath[str]) -> None:
        await svc.media.delete(actor, assetId)

    @post(
        "/uploads",
        status_code=201,
        **route(
            "createUpload",
            "media:write",
            summary="Start an upload: where and how to send the bytes",
            body=True,
            mutating=True,
        ),
    )
    async def create_upload(
        self,
        svc: Svc,
        rt: Rt,
        actor: Actor,
        request: Request[Any, Any, Any],
        data: JSONBody[UploadCreate],
    ) -> Response[UploadOut]:
        cap = rt.settings.media.max_upload_bytes
        if data.size_bytes > cap:
            # a field over its documented maximum is a validation error; 413 is for bodies actually sent
            raise InvalidRequest(f"sizeBytes exceeds the limit of {cap} bytes.", param="sizeBytes")
        upload, asset, token = await svc.media.initiate_upload(
            actor, name=data.name, content_type=data.content_type, size_bytes=data.size_bytes, sha256=data.sha256
        )
        url = f"{base_url(rt, request)}/v1/uploads/{upload.id}?token={quote(token, safe='')}"
        return created(upload_out(upload, asset, url), f"/v1/media/{asset.id}")


class UploadController(Controller):
    """The signed URL itself: the token in the query authenticates, not an API key."""

    path = "/uploads"
    tags = ["media"]

    @put(
        "/{uploadId:str}",
        request_max_body_size=None,  # bounded by the upload's own maxBytes while streaming
        **route(
            "putUploadBytes",
            None,
            summary="Send an upload's bytes (raw body) to its signed URL",
            mutating=True,
            signed=True,
            raw_body=True,
            extra_errors=(401, 404, 413),
        ),
    )
    async def put_bytes(
        self, svc: Svc, request: Request[Any, Any, Any], uploadId: FromPath[str], token: UploadToken = None
    ) -> MediaAssetOut:
        if not token:
            raise Unauthorized("The upload URL's token is missing.")

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in request.stream():
                if chunk:
                    yield chunk

        return asset_out(await svc.media.receive_upload(uploadId, token, chunks()))
