"""Linked platform accounts. Linking is done by platform plugins; /v1 lists and unlinks."""

from __future__ import annotations

from dataclasses import replace

from trax.domain import events
from trax.domain.connections import Connection, ConnectionStatus
from trax.domain.destinations import Destination, DestinationStatus
from trax.domain.errors import NotFound
from trax.domain.pages import Page
from trax.domain.studios import Studio
from trax.interfaces import Delete, Insert, Update, Write
from trax.services import validation
from trax.services.deps import ServiceDeps
from trax.services.paging import keyset_page
from trax.services.principal import Principal
from trax.services.studios import all_children

UNLINKED_REASON = "The linked platform account was removed."
UNLINKED_CODE = "connection_removed"


class ConnectionService:
    def __init__(self, deps: ServiceDeps) -> None:
        self._d = deps

    async def link(self, account_id: str, *, platform: str, display_name: str, external_account_id: str) -> Connection:
        """Called by platform plugins (and the loopback CLI) once an account is linked."""
        now = self._d.now()
        conn = Connection(
            id=self._d.new_id("conn"),
            account_id=account_id,
            created_at=now,
            updated_at=now,
            platform=validation.text(platform, "platform", max_len=50),
            display_name=validation.text(display_name, "displayName", max_len=200),
            external_account_id=validation.text(external_account_id, "externalAccountId", max_len=200),
            status=ConnectionStatus.ACTIVE,
            linked_at=now,
        )
        await self._d.storage.apply([Insert(conn)])
        return conn

    async def list(self, actor: Principal, *, limit: int | None = None, cursor: str | None = None) -> Page[Connection]:
        actor.require("connections:read")
        return await keyset_page(self._d, Connection, actor.account_id, limit=limit, cursor=cursor)

    async def get(self, actor: Principal, connection_id: str) -> Connection:
        actor.require("connections:read")
        conn = await self._d.storage.get(Connection, actor.account_id, connection_id)
        if conn is None:
            raise NotFound("No such connection.")
        return conn

    async def unlink(self, actor: Principal, connection_id: str) -> None:
        """Delete the connection; destinations that used it turn ``error`` in the same transaction."""
        actor.require("connections:write")
        conn = await self._d.storage.get(Connection, actor.account_id, connection_id)
        if conn is None:
            raise NotFound("No such connection.")
        now = self._d.now()
        writes: list[Write] = []
        broken: list[Destination] = []
        after: str | None = None
        while True:
            studios = await self._d.storage.list(Studio, actor.account_id, after=after, limit=200)
            for studio in studios:
                for dst in await all_children(self._d, Destination, actor.account_id, studio.id):
                    if dst.connection_id == conn.id:
                        changed = replace(
                            dst,
                            connection_id=None,
                            status=DestinationStatus.ERROR,
                            error=UNLINKED_REASON,
                            error_code=UNLINKED_CODE,
                            updated_at=now,
                        )
                        writes.append(Update(changed))
                        broken.append(changed)
            if len(studios) < 200:
                break
            after = studios[-1].id
        writes.append(Delete(Connection, actor.account_id, conn.id))
        await self._d.storage.apply(writes)
        for dst in broken:
            await self._d.emit(
                events.DESTINATION_STATUS_CHANGED,
                actor.account_id,
                studio_id=dst.studio_id,
                destination_id=dst.id,
                status=dst.status.value,
                error={"code": dst.error_code, "message": dst.error},
            )
            if self._d.broadcast is not None:  # its egress, if live, stops: there is nowhere to push to
                self._d.broadcast.changed(dst.account_id, dst.studio_id)
