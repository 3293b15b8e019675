"""``/v1/studios/{studioId}/destinations``: where the program goes. Stream keys are write-only."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from trax.server.routes import Actor, Cursor, Limit, Svc, created, route
from trax.server.wire import (
    DestinationCreate,
    DestinationOut,
    DestinationPage,
    DestinationUpdate,
    changes,
    destination_out,
)


class DestinationController(Controller):
    path = "/studios/{studioId:str}/destinations"
    tags = ["destinations"]

    @get("/", **route("listDestinations", "destinations:read", summary="List a studio's destinations"))
    async def list_destinations(
        self, svc: Svc, actor: Actor, studioId: FromPath[str], limit: Limit = 50, cursor: Cursor = ""
    ) -> DestinationPage:
        page = await svc.destinations.list(actor, studioId, limit=limit, cursor=cursor)
        return DestinationPage(data=[destination_out(d) for d in page.data], next_cursor=page.next_cursor)

    @post(
        "/",
        status_code=201,
        **route("createDestination", "destinations:write", summary="Add a destination", body=True, mutating=True),
    )
    async def create_destination(
        self, svc: Svc, actor: Actor, studioId: FromPath[str], data: JSONBody[DestinationCreate]
    ) -> Response[DestinationOut]:
        d = await svc.destinations.create(actor, studioId, changes(data))
        return created(destination_out(d), f"/v1/studios/{studioId}/destinations/{d.id}")

    @get("/{destinationId:str}", **route("getDestination", "destinations:read", summary="Get a destination"))
    async def get_destination(
        self, svc: Svc, actor: Actor, studioId: FromPath[str], destinationId: FromPath[str]
    ) -> DestinationOut:
        return destination_out(await svc.destinations.get(actor, studioId, destinationId))

    @patch(
        "/{destinationId:str}",
        **route("updateDestination", "destinations:write", summary="Update a destination", body=True, mutating=True),
    )
    async def update_destination(
        self,
        svc: Svc,
        actor: Actor,
        studioId: FromPath[str],
        destinationId: FromPath[str],
        data: JSONBody[DestinationUpdate],
    ) -> DestinationOut:
        return destination_out(await svc.destinations.update(actor, studioId, destinationId, changes(data)))

    @delete(
        "/{destinationId:str}",
        status_code=204,
        **route("deleteDestination", "destinations:write", summary="Remove a destination", mutating=True),
    )
    async def delete_destination(
        self, svc: Svc, actor: Actor, studioId: FromPath[str], destinationId: FromPath[str]
    ) -> None:
        await svc.destinations.delete(actor, studioId, destinationId)
