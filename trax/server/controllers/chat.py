"""``/v1/studios/{studioId}/chat/messages``: read and send chat."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from trax.server.routes import Actor, Cursor, Limit, Svc, created, route
from trax.server.wire import ChatMessageOut, ChatMessagePage, ChatSend, chat_out

After = Annotated[str | None, QueryParameter(description="Only messages after this message id (for polling).")]


class ChatController(Controller):
    path = "/studios/{studioId:str}/chat/messages"
    tags = ["chat"]

    @get("/", **route("listChatMessages", "chat:read", summary="List a studio's chat messages"))
    async def list_messages(
        self,
        svc: Svc,
        actor: Actor,
        studioId: FromPath[str],
        limit: Limit = 50,
        cursor: Cursor = "",
        after: After = None,
    ) -> ChatMessagePage:
        page = await svc.chat.list(actor, studioId, limit=limit, cursor=cursor, after=after)
        return ChatMessagePage(data=[chat_out(m) for m in page.data], next_cursor=page.next_cursor)

    @post(
        "/",
        status_code=201,
        **route("sendChatMessage", "chat:write", summary="Send a chat message", body=True, mutating=True),
    )
    async def send_message(
        self, svc: Svc, actor: Actor, studioId: FromPath[str], data: JSONBody[ChatSend]
    ) -> Response[ChatMessageOut]:
        msg = await svc.chat.send(actor, studioId, text=data.text)
        return created(chat_out(msg), f"/v1/studios/{studioId}/chat/messages?after={msg.id}")
