"""``/v1/studios``: CRUD, stream status, go-live and go-offline."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from trax.server.fastpath import FastList
from trax.server.routes import Actor, Cursor, Limit, Svc, created, route
from trax.server.wire import (
    StreamStatusOut,
    StudioCreate,
    StudioOut,
    StudioPage,
    StudioUpdate,
    changes,
    stream_status_out,
    studio_out,
)

_ALREADY = ResponseSpec(
    data_container=StreamStatusOut,
    description="Nothing to do: the studio was already in (or on its way to) that state.",
)


_FAST_LIST = FastList(
    fetch=lambda svc, actor, limit, cursor: svc.studios.list(actor, limit=limit, cursor=cursor),
    to_wire=studio_out,
    page=StudioPage,
)


class StudioController(Controller):
    path = "/studios"
    tags = ["studios"]

    @get("/", **route("listStudios", "studios:read", summary="List studios", fast=_FAST_LIST))
    async def list_studios(self, svc: Svc, actor: Actor, limit: Limit = 50, cursor: Cursor = "") -> StudioPage:
        page = await svc.studios.list(actor, limit=limit, cursor=cursor)
        return StudioPage(data=[studio_out(s) for s in page.data], next_cursor=page.next_cursor)

    @post(
        "/",
        status_code=201,
        **route("createStudio", "studios:write", summary="Create a studio", body=True, mutating=True),
    )
    async def create_studio(self, svc: Svc, actor: Actor, data: JSONBody[StudioCreate]) -> Response[StudioOut]:
        s = await svc.studios.create(actor, name=data.name, description=data.description)
        return created(studio_out(s), f"/v1/studios/{s.id}")

    @get("/{studioId:str}", **route("getStudio", "studios:read", summary="Get a studio"))
    async def get_studio(self, svc: Svc, actor: Actor, studioId: FromPath[str]) -> StudioOut:
        return studio_out(await svc.studios.get(actor, studioId))

    @patch(
        "/{studioId:str}",
        **route("updateStudio", "studios:write", summary="Update a studio", body=True, mutating=True),
    )
    async def update_studio(
        self, svc: Svc, actor: Actor, studioId: FromPath[str], data: JSONBody[StudioUpdate]
    ) -> StudioOut:
        return studio_out(await svc.studios.update(actor, studioId, changes(data)))

    @delete(
        "/{studioId:str}",
        status_code=204,
        **route("deleteStudio", "studios:write", summary="Delete a studio (409 while live)", mutating=True),
    )
    async def delete_studio(self, svc: Svc, actor: Actor, studioId: FromPath[str]) -> None:
        await svc.studios.delete(actor, studioId)

    @get("/{studioId:str}/stream-status", **route("getStreamStatus", "stream:read", summary="A studio's stream status"))
    async def stream_status(self, svc: Svc, actor: Actor, studioId: FromPath[str]) -> StreamStatusOut:
        return stream_status_out(await svc.studios.stream_status(actor, studioId))

    @post(
        "/{studioId:str}/go-live",
        status_code=202,
        **route("goLive", "stream:write", summary="Take a studio live", mutating=True, responses={200: _ALREADY}),
    )
    async def go_live(self, svc: Svc, actor: Actor, studioId: FromPath[str]) -> Response[StreamStatusOut]:
        status, changed = await svc.studios.go_live(actor, studioId)
        return Response(stream_status_out(status), status_code=202 if changed else 200)

    @post(
        "/{studioId:str}/go-offline",
        status_code=202,
        **route("goOffline", "stream:write", summary="Take a studio offline", mutating=True, responses={200: _ALREADY}),
    )
    async def go_offline(self, svc: Svc, actor: Actor, studioId: FromPath[str]) -> Response[StreamStatusOut]:
        status, changed = await svc.studios.go_offline(actor, studioId)
        return Response(stream_status_out(status), status_code=202 if changed else 200)
