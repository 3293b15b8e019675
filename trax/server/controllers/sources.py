"""``/v1/studios/{studioId}/sources``: CRUD and self-serve ingest credentials."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from trax.domain.errors import InvalidRequest, Unavailable
from trax.ingest.urls import stream_key_urls
from trax.server.routes import Actor, Cursor, Limit, Rt, Svc, created, route
from trax.server.wire import (
    IngestCredentialsOut,
    SessionTokenCreate,
    SourceCreate,
    SourceOut,
    SourcePage,
    SourceUpdate,
    StreamKeyOut,
    changes,
    credentials_out,
    require_strict,
    source_out,
    stream_key_out,
)


class SourceController(Controller):
    path = "/studios/{studioId:str}/sources"
    tags = ["sources"]

    @get("/", **route("listSources", "sources:read", summary="List a studio's sources"))
    async def list_sources(
        self, svc: Svc, actor: Actor, studioId: FromPath[str], limit: Limit = 50, cursor: Cursor = ""
    ) -> SourcePage:
        page = await svc.sources.list(actor, studioId, limit=limit, cursor=cursor)
        return SourcePage(data=[source_out(s) for s in page.data], next_cursor=page.next_cursor)

    @post(
        "/",
        status_code=201,
        **route("createSource", "sources:write", summary="Add a source", body=True, mutating=True),
    )
    async def create_source(
        self, svc: Svc, actor: Actor, studioId: FromPath[str], data: JSONBody[SourceCreate]
    ) -> Response[SourceOut]:
        s = await svc.sources.create(
            actor, studioId, name=data.name, kind=data.kind, media_asset_id=data.media_asset_id
        )
        return created(source_out(s), f"/v1/studios/{studioId}/sources/{s.id}")

    @get("/{sourceId:str}", **route("getSource", "sources:read", summary="Get a source"))
    async def get_source(self, svc: Svc, actor: Actor, studioId: FromPath[str], sourceId: FromPath[str]) -> SourceOut:
        return source_out(await svc.sources.get(actor, studioId, sourceId))

    @patch(
        "/{sourceId:str}",
        **route("updateSource", "sources:write", summary="Update a source", body=True, mutating=True),
    )
    async def update_source(
        self,
        svc: Svc,
        actor: Actor,
        request: Request[Any, Any, Any],
        studioId: FromPath[str],
        sourceId: FromPath[str],
        data: JSONBody[SourceUpdate],
    ) -> SourceOut:
        require_strict(await request.body(), SourceUpdate)
        return source_out(await svc.sources.update(actor, studioId, sourceId, changes(data)))

    @delete(
        "/{sourceId:str}",
        status_code=204,
        **route("deleteSource", "sources:write", summary="Remove a source", mutating=True),
    )
    async def delete_source(self, svc: Svc, actor: Actor, studioId: FromPath[str], sourceId: FromPath[str]) -> None:
        await svc.sources.delete(actor, studioId, sourceId)

    @post(
        "/{sourceId:str}/stream-key",
        status_code=200,
        **route(
            "rotateStreamKey",
            "sources:write",
            summary="Create or rotate the source's static stream key (shown once; the old key stops at once)",
            mutating=True,
        ),
    )
    async def rotate_stream_key(
        self, svc: Svc, rt: Rt, actor: Actor, studioId: FromPath[str], sourceId: FromPath[str]
    ) -> StreamKeyOut:
        source, key = await svc.sources.rotate_stream_key(actor, studioId, sourceId)
        return stream_key_out(source.id, source.path, key, stream_key_urls(rt.settings.ingest, source.path, key))


class SessionTokenController(Controller):
    """Mounted only when ``public_api.session_tokens_enabled`` (else the route is a plain 404)."""

    path = "/studios/{studioId:str}/sources/{sourceId:str}/session-tokens"
    tags = ["sources"]

    @post(
        "/",
        status_code=201,
        **route(
            "createSessionToken",
            "sources:write",
            summary="Mint a media token with ready-to-paste ingest URLs",
            body=True,
            body_optional=True,
            mutating=True,
        ),
    )
    async def create_session_token(
        self,
        svc: Svc,
        rt: Rt,
        actor: Actor,
        studioId: FromPath[str],
        sourceId: FromPath[str],
        data: JSONBody[SessionTokenCreate | None] = None,
    ) -> Response[IngestCredentialsOut]:
        body = data or SessionTokenCreate()
        # minting is a sources:write action; the lookup below reads with the same tenancy
        reader = replace(actor, scopes=frozenset({"sources:read"}))
        source = await svc.sources.get(reader, studioId, sourceId)
        tokens = getattr(rt, "media_tokens", None)
        if tokens is None:
            raise Unavailable("Media tokens are not available on this deployment.", retry_after=60)
        try:
            creds = await tokens.mint(path=source.path, action=body.action, ttl=body.ttl_seconds)
        except InvalidRequest as exc:
            if exc.param == "ttl":
                raise InvalidRequest(exc.message, param="ttlSeconds") from None
            raise
        return created(credentials_out(creds), f"/v1/studios/{studioId}/sources/{sourceId}")
