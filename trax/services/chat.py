"""Chat: list a studio's messages, send one out to every linked platform, record inbound ones."""

from __future__ import annotations

import logging

from trax.domain import events
from trax.domain.chat import MAX_CHAT_TEXT, ChatDirection, ChatMessage
from trax.domain.connections import Connection, ConnectionStatus
from trax.domain.destinations import Destination
from trax.domain.errors import InvalidRequest
from trax.domain.ids import looks_like_id
from trax.domain.pages import Page
from trax.services import validation
from trax.services.deps import ServiceDeps
from trax.services.paging import keyset_page
from trax.services.principal import Principal
from trax.services.studios import all_children, insert_child, load_studio

log = logging.getLogger(__name__)


class ChatService:
    def __init__(self, deps: ServiceDeps) -> None:
        self._d = deps

    async def list(
        self,
        actor: Principal,
        studio_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        after: str | None = None,
    ) -> Page[ChatMessage]:
        actor.require("chat:read")
        if after is not None and not looks_like_id(after, "msg"):
            raise InvalidRequest("after must be a message id.", param="after")
        await load_studio(self._d, actor.account_id, studio_id)
        return await keyset_page(
            self._d, ChatMessage, actor.account_id, parent_id=studio_id, limit=limit, cursor=cursor, after=after
        )

    async def send(self, actor: Principal, studio_id: str, *, text: str, author_name: str = "studio") -> ChatMessage:
        """Store an outbound message and hand it to each linked platform of the studio's destinations."""
        actor.require("chat:write")
        text = validation.prose(text, "text", max_len=MAX_CHAT_TEXT)
        if not text.strip():
            raise InvalidRequest("text must not be blank.", param="text")
        await load_studio(self._d, actor.account_id, studio_id)
        now = self._d.now()
        msg = ChatMessage(
            id=self._d.new_id("msg"),
            account_id=actor.account_id,
            created_at=now,
            updated_at=now,
            studio_id=studio_id,
            text=text,
            direction=ChatDirection.OUTBOUND,
            platform="trax",
            author_name=validation.text(author_name, "author", max_len=200),
            sent_at=now,
        )
        await insert_child(self._d, msg)
        await self._fan_out(msg)
        await self._d.emit(events.CHAT_MESSAGE, msg.account_id, studio_id=studio_id, message_id=msg.id)
        return msg

    async def _fan_out(self, msg: ChatMessage) -> None:
        dests = await all_children(self._d, Destination, msg.account_id, msg.studio_id)
        seen: set[str] = set()
        for dst in dests:
            if not dst.enabled or not dst.connection_id or dst.connection_id in seen:
                continue
            seen.add(dst.connection_id)
            conn = await self._d.storage.get(Connection, msg.account_id, dst.connection_id)
            platform = self._d.platforms.get(conn.platform) if conn else None
            if conn is None or platform is None or conn.status is not ConnectionStatus.ACTIVE:
                continue
            try:
                await platform.send_chat(conn, msg)
            except Exception:  # one platform failing must not lose the message for the others
                log.warning("chat to %s failed for %s", conn.platform, conn.id, exc_info=True)

    async def receive(
        self,
        connection: Connection,
        studio_id: str,
        *,
        text: str,
        author_name: str,
        author_external_id: str | None = None,
    ) -> ChatMessage:
        """Record a message that arrived from a platform (called by platform plugins)."""
        await load_studio(self._d, connection.account_id, studio_id)
        now = self._d.now()
        msg = ChatMessage(
            id=self._d.new_id("msg"),
            account_id=connection.account_id,
            created_at=now,
            updated_at=now,
            studio_id=studio_id,
            text=validation.prose(text, "text", max_len=MAX_CHAT_TEXT),
            direction=ChatDirection.INBOUND,
            platform=connection.platform,
            connection_id=connection.id,
            author_name=validation.text(author_name, "author", max_len=200),
            author_external_id=author_external_id,
            sent_at=now,
        )
        await insert_child(self._d, msg)
        await self._d.emit(events.CHAT_MESSAGE, msg.account_id, studio_id=studio_id, message_id=msg.id)
        return msg
