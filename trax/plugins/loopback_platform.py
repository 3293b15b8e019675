"""``loopback`` platform for development: outbound chat is recorded, inbound chat comes from the CLI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trax.domain.chat import ChatMessage
from trax.domain.connections import Connection
from trax.interfaces import IngestTarget, Platform
from trax.plugin_api import Backend, hookimpl


class LoopbackOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep: int = Field(default=1000, ge=0)
    """How many outbound messages to remember."""
    ingest_url: str | None = Field(default=None, pattern=r"^(rtmps?|srt)://")
    """Where every loopback connection's program goes (rtmp://, rtmps:// or srt://), e.g. a local receiver."""
    stream_key: str | None = Field(default=None, repr=False)
    """Appended to an rtmp(s) ``ingest_url`` as the stream key."""


class LoopbackPlatform:
    name = "loopback"

    def __init__(self, keep: int = 1000, ingest_url: str | None = None, stream_key: str | None = None) -> None:
        self.sent: list[tuple[str, str, str]] = []
        """``(connection id, message id, text)`` of each message sent, newest last."""
        self._keep = keep
        self._ingest_url = ingest_url
        self._stream_key = stream_key

    def __repr__(self) -> str:
        return f"<LoopbackPlatform sent={len(self.sent)}>"

    async def ingest_target(self, connection: Connection) -> IngestTarget:
        if self._ingest_url is None:
            raise LookupError("platforms.loopback.ingest_url is not set: loopback destinations have nowhere to go")
        return IngestTarget(url=self._ingest_url, stream_key=self._stream_key)

    async def send_chat(self, connection: Connection, message: ChatMessage) -> None:
        self.sent.append((connection.id, message.id, message.text))
        del self.sent[: max(0, len(self.sent) - self._keep)]


def _factory(options: Any, runtime: Any) -> Platform:
    return LoopbackPlatform(options.keep, options.ingest_url, options.stream_key)


@hookimpl
def trax_register_platforms() -> list[Backend[Platform]]:
    return [Backend("loopback", _factory, LoopbackOptions, description="Development stand-in for a platform.")]
