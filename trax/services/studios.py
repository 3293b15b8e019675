"""Studios: CRUD, going live and offline, stream status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trax.domain import events
from trax.domain.chat import ChatMessage
from trax.domain.destinations import Destination
from trax.domain.errors import Conflict, NotFound
from trax.domain.pages import Page
from trax.domain.sources import Source
from trax.domain.stream import DestinationState, SourceState, StreamStatus
from trax.domain.studios import Studio, StudioStatus, check_transition
from trax.interfaces import Delete, Insert, Update, Write
from trax.services import validation
from trax.services.deps import ServiceDeps
from trax.services.paging import keyset_page
from trax.services.principal import Principal

DELETE_ATTEMPTS = 3
"""How many times a studio delete re-lists its children after losing to a concurrent create."""


async def all_children(deps: ServiceDeps, kind: type[Any], account_id: str, parent_id: str) -> list[Any]:
    """Every child of one parent, walked in pages (used for cascades and status)."""
    out: list[Any] = []
    after: str | None = None
    while True:
        rows = await deps.storage.list(kind, account_id, parent_id=parent_id, after=after, limit=200)
        out.extend(rows)
        if len(rows) < 200:
            return out
        after = rows[-1].id


async def insert_child(deps: ServiceDeps, child: Any) -> None:
    """Store a new child of a studio; a studio deleted since it was loaded is a 404, as if never found.

    Storage refuses a child whose parent is gone when the batch commits, so a
    create racing the studio's deletion cannot leave an orphan behind.
    """
    try:
        await deps.storage.apply([Insert(child)])
    except NotFound:
        raise NotFound("No such studio.") from None


async def load_studio(deps: ServiceDeps, account_id: str, studio_id: str) -> Studio:
    studio = await deps.storage.get(Studio, account_id, studio_id)
    if studio is None:
        raise NotFound("No such studio.")
    return studio


class StudioService:
    def __init__(self, deps: ServiceDeps) -> None:
        self._d = deps

    async def create(self, actor: Principal, *, name: str, description: str | None = None) -> Studio:
        actor.require("studios:write")
        now = self._d.now()
        studio = Studio(
            id=self._d.new_id("studio"),
            account_id=actor.account_id,
            created_at=now,
            updated_at=now,
            name=validation.text(name, "name", max_len=100),
            description=validation.optional_text(description, "description", max_len=1000),
        )
        await self._d.storage.apply([Insert(studio)])
        return studio

    async def list(self, actor: Principal, *, limit: int | None = None, cursor: str | None = None) -> Page[Studio]:
        actor.require("studios:read")
        return await keyset_page(self._d, Studio, actor.account_id, limit=limit, cursor=cursor)

    async def get(self, actor: Principal, studio_id: str) -> Studio:
        actor.require("studios:read")
        return await load_studio(self._d, actor.account_id, studio_id)

    async def update(self, actor: Principal, studio_id: str, changes: Mapping[str, Any]) -> Studio:
        actor.require("studios:write")
        validation.only_fields(changes, ("name", "description"))
        studio = await load_studio(self._d, actor.account_id, studio_id)
        fields: dict[str, Any] = {}
        if "name" in changes:
            fields["name"] = validation.text(changes["name"], "name", max_len=100)
        if "description" in changes:
            fields["description"] = validation.optional_text(changes["description"], "description", max_len=1000)
        if not fields:
            return studio
        updated = replace(studio, **fields, updated_at=self._d.bump(studio.updated_at))
        await self._d.storage.apply([Update(updated)])
        return updated

    async def delete(self, actor: Principal, studio_id: str) -> None:
        """Delete a studio with its sources, destinations and chat; refused while on air."""
        actor.require("studios:write")
        # A child created between the listing and the commit makes storage refuse the batch rather
        # than orphan it; listing again takes the newcomer too. A studio that went live meanwhile
        # is refused by the next round's check, with the reason.
        for _ in range(DELETE_ATTEMPTS):
            studio = await load_studio(self._d, actor.account_id, studio_id)
            if studio.is_on_air:
                raise Conflict("A studio cannot be deleted while it is live; take it offline first.")
            writes: list[Write] = []
            for kind in (Source, Destination, ChatMessage):
                for child in await all_children(self._d, kind, actor.account_id, studio.id):
                    writes.append(Delete(kind, actor.account_id, child.id))
            # the studio's own row last, compare-and-set, so a concurrent go-live wins cleanly
            writes.append(Update(studio, expect_updated_at=studio.updated_at))
            writes.append(Delete(Studio, actor.account_id, studio.id))
            try:
                await self._d.storage.apply(writes)
                return
            except Conflict:
                continue
        raise Conflict("The studio kept changing while it was being deleted; retry.")

    # --- on air -----------------------------------------------------------

    async def stream_status(self, actor: Principal, studio_id: str) -> StreamStatus:
        actor.require("stream:read")
        studio = await load_studio(self._d, actor.account_id, studio_id)
        return await self._status(studio)

    async def _status(self, studio: Studio) -> StreamStatus:
        sources = await all_children(self._d, Source, studio.account_id, studio.id)
        dests = await all_children(self._d, Destination, studio.account_id, studio.id)
        updated = max([studio.updated_at, *(s.updated_at for s in sources), *(d.updated_at for d in dests)])
        return StreamStatus(
            studio_id=studio.id,
            status=studio.status,
            live_since=studio.live_since,
            updated_at=updated,
            sources=tuple(SourceState(id=s.id, status=s.status) for s in sources),
            destinations=tuple(DestinationState(id=d.id, status=d.status, error=d.error) for d in dests),
        )

    async def go_live(self, actor: Principal, studio_id: str) -> tuple[StreamStatus, bool]:
        """Returns the status and whether anything changed (False: it was already on its way)."""
        actor.require("stream:write")
        studio = await load_studio(self._d, actor.account_id, studio_id)
        if studio.status in (StudioStatus.LIVE, StudioStatus.STARTING):
            return await self._status(studio), False
        if studio.status is StudioStatus.STOPPING:
            raise Conflict("The studio is still stopping; try again shortly.")
        # No compositor runs between "starting" and "live" yet, so both steps happen here;
        # the state machine still checks each one so a later compositor can split them.
        check_transition(studio.status, StudioStatus.STARTING)
        check_transition(StudioStatus.STARTING, StudioStatus.LIVE)
        now = self._d.now()
        live = replace(studio, status=StudioStatus.LIVE, live_since=now, updated_at=self._d.bump(studio.updated_at))
        try:
            await self._d.storage.apply([Update(live, expect_updated_at=studio.updated_at)])
        except Conflict:
            # Someone changed the studio meanwhile; if that was a go-live too, this call is a repeat.
            current = await load_studio(self._d, actor.account_id, studio_id)
            if current.status in (StudioStatus.LIVE, StudioStatus.STARTING):
                return await self._status(current), False
            raise
        await self._d.emit(events.STREAM_LIVE, studio.account_id, studio_id=studio.id, live_since=now.isoformat())
        return await self._status(live), True

    async def go_offline(self, actor: Principal, studio_id: str) -> tuple[StreamStatus, bool]:
        actor.require("stream:write")
        studio = await load_studio(self._d, actor.account_id, studio_id)
        if studio.status in (StudioStatus.OFFLINE, StudioStatus.STOPPING):
            return await self._status(studio), False
        check_transition(studio.status, StudioStatus.STOPPING)
        check_transition(StudioStatus.STOPPING, StudioStatus.OFFLINE)
        off = replace(studio, status=StudioStatus.OFFLINE, live_since=None, updated_at=self._d.bump(studio.updated_at))
        try:
            await self._d.storage.apply([Update(off, expect_updated_at=studio.updated_at)])
        except Conflict:
            current = await load_studio(self._d, actor.account_id, studio_id)
            if current.status in (StudioStatus.OFFLINE, StudioStatus.STOPPING):
                return await self._status(current), False
            raise
        await self._d.emit(events.STREAM_OFFLINE, studio.account_id, studio_id=studio.id)
        return await self._status(off), True
