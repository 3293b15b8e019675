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
from trax.domain.sources import Source, SourceStatus
from trax.domain.stream import DestinationState, ProgramState, SourceState, StreamStatus
from trax.domain.studios import Studio, StudioStatus, check_transition
from trax.interfaces import Delete, Insert, Update, Write
from trax.services import validation
from trax.services.deps import ServiceDeps
from trax.services.paging import keyset_page
from trax.services.principal import Principal
from trax.services.program import apply_program_patch

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
            description=validation.optional_prose(description, "description", max_len=1000),
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
        validation.only_fields(changes, ("name", "description", "program"))
        studio = await load_studio(self._d, actor.account_id, studio_id)
        fields: dict[str, Any] = {}
        if "program" in changes:
            program = await apply_program_patch(
                self._d, actor.account_id, studio.id, changes["program"], studio.program
            )
            if program != studio.program:
                fields["program"] = program
        if "name" in changes:
            fields["name"] = validation.text(changes["name"], "name", max_len=100)
        if "description" in changes:
            fields["description"] = validation.optional_prose(changes["description"], "description", max_len=1000)
        if not fields:
            return studio
        updated = replace(studio, **fields, updated_at=self._d.bump(studio.updated_at))
        await self._d.storage.apply([Update(updated)])
        if "program" in fields and updated.is_on_air and self._d.broadcast is not None:
            self._d.broadcast.changed(updated.account_id, updated.id)
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
            sources=tuple(self._source_state(s) for s in sources),
            destinations=tuple(
                DestinationState(id=d.id, status=d.status, error=d.error, error_code=d.error_code) for d in dests
            ),
            program=self._program_state(studio),
        )

    def _source_state(self, src: Source) -> SourceState:
        live = src.status is SourceStatus.LIVE and self._d.ingest is not None
        return SourceState(
            id=src.id,
            status=src.status,
            name=src.name,
            kind=src.kind,
            # an error says why; a live source may carry a warning (``no_keyframes``: nothing a reader can start on)
            reason=src.status_reason if src.status in (SourceStatus.ERROR, SourceStatus.LIVE) else None,
            # only this process's hub is asked: with several processes, another may hold the publisher
            media=self._d.ingest.media(src.path) if live and self._d.ingest is not None else None,
        )

    def _program_state(self, studio: Studio) -> ProgramState | None:
        if not studio.is_on_air:
            return None
        state = self._d.broadcast.program_state(studio.id) if self._d.broadcast is not None else None
        # Another process may run this studio's pipeline (several ``trax serve`` on one database).
        return state

    async def _settle(
        self, account_id: str, studio_id: str, from_status: StudioStatus, to_status: StudioStatus
    ) -> Studio | None:
        """Finish a transition begun earlier: ``from_status`` → ``to_status`` over whatever is stored now.

        The studio may be edited (its program, its name) while the pipeline starts or stops, so the
        compare-and-set is retried on the latest row; ``None`` when it left ``from_status`` meanwhile.
        """
        for _ in range(DELETE_ATTEMPTS * 3):
            current = await load_studio(self._d, account_id, studio_id)
            if current.status is not from_status:
                return None
            fields: dict[str, Any] = {"status": to_status, "updated_at": self._d.bump(current.updated_at)}
            if to_status is StudioStatus.OFFLINE:
                fields["live_since"] = None
            settled = replace(current, **fields)
            try:
                await self._d.storage.apply([Update(settled, expect_updated_at=current.updated_at)])
                return settled
            except Conflict:
                continue
        raise Conflict("The studio kept changing while it went on or off air; retry.")

    async def go_live(self, actor: Principal, studio_id: str) -> tuple[StreamStatus, bool]:
        """Returns the status and whether anything changed (False: it was already on its way)."""
        actor.require("stream:write")
        studio = await load_studio(self._d, actor.account_id, studio_id)
        if studio.status in (StudioStatus.LIVE, StudioStatus.STARTING):
            return await self._status(studio), False
        if studio.status is StudioStatus.STOPPING:
            raise Conflict("The studio is still stopping; try again shortly.")
        check_transition(studio.status, StudioStatus.STARTING)
        now = self._d.now()
        starting = replace(
            studio, status=StudioStatus.STARTING, live_since=now, updated_at=self._d.bump(studio.updated_at)
        )
        try:
            await self._d.storage.apply([Update(starting, expect_updated_at=studio.updated_at)])
        except Conflict:
            # Someone changed the studio meanwhile; if that was a go-live too, this call is a repeat.
            current = await load_studio(self._d, actor.account_id, studio_id)
            if current.status in (StudioStatus.LIVE, StudioStatus.STARTING):
                return await self._status(current), False
            raise
        if self._d.broadcast is not None:
            # The pipeline starts in this process; a failure to start is the program's status, not the
            # request's: the studio is live and the pipeline is retried with backoff.
            await self._d.broadcast.start(studio.account_id, studio.id)
        check_transition(StudioStatus.STARTING, StudioStatus.LIVE)
        live = await self._settle(actor.account_id, studio_id, StudioStatus.STARTING, StudioStatus.LIVE)
        if live is None:  # a go-offline landed while the pipeline started
            return await self._status(await load_studio(self._d, actor.account_id, studio_id)), True
        await self._d.emit(events.STREAM_LIVE, studio.account_id, studio_id=studio.id, live_since=now.isoformat())
        return await self._status(live), True

    async def go_offline(self, actor: Principal, studio_id: str) -> tuple[StreamStatus, bool]:
        actor.require("stream:write")
        studio = await load_studio(self._d, actor.account_id, studio_id)
        if studio.status in (StudioStatus.OFFLINE, StudioStatus.STOPPING):
            return await self._status(studio), False
        check_transition(studio.status, StudioStatus.STOPPING)
        stopping = replace(studio, status=StudioStatus.STOPPING, updated_at=self._d.bump(studio.updated_at))
        try:
            await self._d.storage.apply([Update(stopping, expect_updated_at=studio.updated_at)])
        except Conflict:
            current = await load_studio(self._d, actor.account_id, studio_id)
            if current.status in (StudioStatus.OFFLINE, StudioStatus.STOPPING):
                return await self._status(current), False
            raise
        if self._d.broadcast is not None:
            await self._d.broadcast.stop(studio.account_id, studio.id)
        check_transition(StudioStatus.STOPPING, StudioStatus.OFFLINE)
        off = await self._settle(actor.account_id, studio_id, StudioStatus.STOPPING, StudioStatus.OFFLINE)
        if off is None:
            return await self._status(await load_studio(self._d, actor.account_id, studio_id)), True
        await self._d.emit(events.STREAM_OFFLINE, studio.account_id, studio_id=studio.id)
        return await self._status(off), True
