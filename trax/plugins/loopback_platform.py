"""``loopback`` platform for development: outbound chat is recorded, inbound chat comes from the CLI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trax.domain.chat import ChatMessage
from trax.domain.connections import Connection
from trax.interfaces import Platform
from trax.plugin_api import Backend, hookimpl


class LoopbackOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep: int = Field(default=1000, ge=0)
    """How many outbound messages to remember."""


class LoopbackPlatform:
    name = "loopback"

    def __init__(self, keep: int = 1000) -> None:
        self.sent: list[tuple[str, str, str]] = []
        """``(connection id, message id, text)`` of each message sent, newest last."""
        self._keep = keep

    async def send_chat(self, connection: Connection, message: ChatMessage) -> None:
        self.sent.append((connection.id, message.id, message.text))
        del self.sent[: max(0, len(self.sent) - self._keep)]


def _factory(options: Any, runtime: Any) -> Platform:
    return LoopbackPlatform(options.keep)


@hookimpl
def trax_register_platforms() -> list[Backend[Platform]]:
    return [Backend("loopback", _factory, LoopbackOptions, description="Development stand-in for a platform.")]
