"""A complete trax plugin in one file: a ``console`` chat platform and an event log.

Load it from a deployment file, no packaging needed::

    plugins:
      paths: [examples/one_file_plugin.py]
    platforms:
      console: {prefix: "[chat]"}     # turns the platform on, with its options

What it shows:

* a registration hook (``trax_register_platforms``) returning a ``Backend`` whose
  options are validated by its own pydantic model at start-up;
* a lifecycle hook (``trax_event``) that sees every domain event
  (``stream.live``, ``chat.message``, ...) and may be ``async def``.

Link an account to it with the loopback-style CLI or from a notebook::

    conn = await rt.services.connections.link(account_id, platform="console",
                                              display_name="me", external_account_id="me")

then a destination ``{"platform": "console", "connectionId": conn.id}`` makes every
chat message sent to the studio come out here.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict

from trax import Backend, hookimpl
from trax.domain.chat import ChatMessage
from trax.domain.connections import Connection
from trax.domain.events import Event
from trax.interfaces import Platform

log = logging.getLogger("trax.examples.one_file_plugin")


class ConsoleOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in the file fails at start-up
    prefix: str = "[console]"


class ConsolePlatform:
    """Writes outbound chat to the log and keeps it, so a notebook or test can look."""

    name = "console"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lines: list[str] = []

    async def send_chat(self, connection: Connection, message: ChatMessage) -> None:
        line = f"{self.prefix} {connection.display_name}: {message.text}"
        self.lines.append(line)
        log.info("%s", line)


def _console(options: Any, runtime: Any) -> Platform:
    return ConsolePlatform(options.prefix)


@hookimpl
def trax_register_platforms() -> list[Backend[Platform]]:
    return [Backend("console", _console, ConsoleOptions, description="Chat to the server log (example plugin).")]


@hookimpl
async def trax_event(event: Event, runtime: Any) -> None:
    # Called for every domain event; an exception here is logged and never reaches the caller.
    log.info("event %s for %s: %s", event.type, event.account_id, event.data)
