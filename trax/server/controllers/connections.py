"""``/v1/connections``: linked platform accounts (linking itself happens in platform plugins)."""

from __future__ import annotations

from litestar import Controller, delete, get
from litestar.params import FromPath

from trax.server.routes import Actor, Cursor, Limit, Svc, route
from trax.server.wire import ConnectionOut, ConnectionPage, connection_out


class ConnectionController(Controller):
    path = "/connections"
    tags = ["connections"]

    @get("/", **route("listConnections", "connections:read", summary="List linked platform accounts"))
    async def list_connections(self, svc: Svc, actor: Actor, limit: Limit = 50, cursor: Cursor = "") -> ConnectionPage:
        page = await svc.connections.list(actor, limit=limit, cursor=cursor)
        return ConnectionPage(data=[connection_out(c) for c in page.data], next_cursor=page.next_cursor)

    @get("/{connectionId:str}", **route("getConnection", "connections:read", summary="Get a linked account"))
    async def get_connection(self, svc: Svc, actor: Actor, connectionId: FromPath[str]) -> ConnectionOut:
        return connection_out(await svc.connections.get(actor, connectionId))

    @delete(
        "/{connectionId:str}",
        status_code=204,
        **route("deleteConnection", "connections:write", summary="Unlink a platform account", mutating=True),
    )
    async def delete_connection(self, svc: Svc, actor: Actor, connectionId: FromPath[str]) -> None:
        await svc.connections.unlink(actor, connectionId)
