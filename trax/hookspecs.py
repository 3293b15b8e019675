"""Every hook trax calls, grouped by when it is called.

Plugins implement these with ``@trax.hookimpl`` and are found through the
``trax`` entry-point group, a deployment file's ``plugins.paths`` /
``plugins.modules``, or ``PluginManager.register`` in code.

Two kinds of hook:

* **Registration hooks** (``trax_register_*``) are called once while a
  runtime is built. Each returns a *list* of :class:`~trax.plugin_api.Backend`
  entries; the lists of all plugins are merged and checked once (duplicate
  names and wrong types fail at start-up, not at the first request). The
  deployment file then picks entries by name. The per-request work goes
  through the typed Protocols in :mod:`trax.interfaces`, never through hooks.
* **Lifecycle hooks** are plain notifications. ``trax_startup``,
  ``trax_shutdown`` and ``trax_event`` may be ``async def``: the runtime calls
  each plugin on its own and awaits what it returns, in pluggy's call order
  (shutdown in reverse). Pluggy itself has no async support, so none of them
  is ``firstresult``: an un-awaited coroutine would always "win".

The documentation in ``docs/plugins.md`` is checked against this module by a
test, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from trax.domain.events import Event
    from trax.interfaces import Authenticator, BlobStore, EventBus, Platform, RateLimiter, Storage, Transport
    from trax.plugin_api import Backend
    from trax.runtime import Runtime
    from trax.settings import Settings

hookspec = pluggy.HookspecMarker("trax")


# --- registration: called once per runtime build ---------------------------


@hookspec
def trax_register_storage() -> list[Backend[Storage]]:
    """Storage backends this plugin provides (``storage.backend`` picks one).

    Called once while a runtime is built. Return a list of ``Backend`` entries
    whose ``factory(options, runtime)`` returns a :class:`~trax.interfaces.Storage`.
    """
    raise NotImplementedError


@hookspec
def trax_register_rate_limiters() -> list[Backend[RateLimiter]]:
    """Rate limiters (``limits.backend`` picks one). Called once per runtime build."""
    raise NotImplementedError


@hookspec
def trax_register_blob_stores() -> list[Backend[BlobStore]]:
    """Blob stores for uploaded media (``blobs.backend`` picks one). Called once per runtime build."""
    raise NotImplementedError


@hookspec
def trax_register_event_buses() -> list[Backend[EventBus]]:
    """Event buses (``events.backend`` picks one). Called once per runtime build."""
    raise NotImplementedError


@hookspec
def trax_register_platforms() -> list[Backend[Platform]]:
    """Streaming platforms destinations and chat go to (enabled by name under ``platforms``).

    Called once per runtime build.
    """
    raise NotImplementedError


@hookspec
def trax_register_transports() -> list[Backend[Transport]]:
    """Ingest listeners (``ingest.<name>.enabled`` turns each on; its mapping is its options).

    Called once per runtime build; transports are started by ``trax serve`` after storage is open.
    """
    raise NotImplementedError


@hookspec
def trax_register_authenticators() -> list[Backend[Authenticator]]:
    """Links of the /v1 authentication chain, tried in ``order`` until one recognises the credential.

    Called once per runtime build. Every registered authenticator is used.
    """
    raise NotImplementedError


# --- lifecycle ---------------------------------------------------------------


@hookspec
def trax_configure(settings: Settings) -> None:
    """Called once after the deployment file is loaded, before any backend is built.

    Inspect settings or raise ``trax.ConfigError`` to refuse them; return nothing.
    """


@hookspec
def trax_startup(runtime: Runtime) -> Awaitable[None] | None:
    """Called once after every backend is open, before the server accepts requests.

    May be ``async def``. Return nothing (or an awaitable, which is awaited).
    """


@hookspec
def trax_shutdown(runtime: Runtime) -> Awaitable[None] | None:
    """Called once when the runtime stops, before backends are closed. May be ``async def``.

    Plugins are called in the reverse of ``trax_startup``'s order; one that raises is logged and
    the others still run.
    """


@hookspec
def trax_event(event: Event, runtime: Runtime) -> Awaitable[None] | None:
    """Called for every domain event this process sees (``stream.live``, ``chat.message``, ...).

    May be ``async def``. With a shared event bus, events raised by other
    processes arrive here too. An exception is logged and does not reach the
    code that raised the event.
    """
