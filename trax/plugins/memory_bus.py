"""``memory`` event bus: delivers events to subscribers in this process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from trax.domain.events import Event
from trax.interfaces import EventBus, EventHandler
from trax.plugin_api import Backend, hookimpl

log = logging.getLogger(__name__)


class LocalEventBus:
    """Awaits each subscriber in turn; one failing subscriber is logged and skipped."""

    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()

    async def publish(self, event: Event) -> None:
        await self.deliver(event)

    async def deliver(self, event: Event) -> None:
        """Hand ``event`` to local subscribers (shared buses call this for remote events)."""
        for handler in list(self._handlers):
            try:
                await handler(event)
            except Exception:
                log.exception("event subscriber failed for %s %s", event.type, event.id)

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe


def _factory(options: Any, runtime: Any) -> EventBus:
    return LocalEventBus()


@hookimpl
def trax_register_event_buses() -> list[Backend[EventBus]]:
    return [Backend("memory", _factory, description="Subscribers in this process only.")]
