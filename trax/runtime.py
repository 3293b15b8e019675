"""Settings + plugins + backends: the object everything in one process shares.

``Runtime.build`` picks and validates every backend (nothing is opened, so
``trax check`` can use it); ``start``/``stop`` open and close them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import BaseModel, TypeAdapter, ValidationError

from trax.domain.events import Event
from trax.domain.ids import IdGenerator
from trax.domain.keys import RateLimitOverride
from trax.domain.pages import CursorCodec
from trax.ingest.hub import PathHub
from trax.ingest.tokens import MediaTokens
from trax.ingest.urls import ingest_urls
from trax.ingest.view import HubView
from trax.interfaces import (
    Authenticator,
    BlobStore,
    EventBus,
    PartialSweeper,
    Platform,
    RateLimiter,
    Storage,
    Transport,
)
from trax.plugin_manager import Registry, collect_registry, make_plugin_manager
from trax.redaction import scrub
from trax.secrets_store import load_server_key
from trax.services import MediaPolicy, ServiceDeps, Services
from trax.settings import ConfigError, Settings, load_settings, validate_options

if TYPE_CHECKING:
    from trax.broadcast.manager import Broadcasts

log = logging.getLogger(__name__)


def _flag(value: Any, where: str) -> bool:
    """A boolean as pydantic reads one, so ``TRAX_INGEST__RTMP__ENABLED=false`` means off, not a truthy string."""
    try:
        return TypeAdapter(bool).validate_python(value)
    except ValidationError:
        raise ConfigError(f"{where}: must be true or false, not {value!r}") from None


class Runtime:
    """One deployment in one process. Build several side by side in tests and notebooks."""

    settings: Settings
    pm: pluggy.PluginManager
    registry: Registry
    storage: Storage
    limiter: RateLimiter
    limiter_options: BaseModel
    blobs: BlobStore
    bus: EventBus
    platforms: dict[str, Platform]
    authenticators: list[Authenticator]
    transports: dict[str, Transport]
    services: Services
    media_tokens: MediaTokens
    hub: PathHub
    broadcasts: Broadcasts | None

    def __init__(self, settings: Settings, pm: pluggy.PluginManager | None = None, *, dry_run: bool = False) -> None:
        """Build every backend the settings name (nothing is opened).

        ``dry_run`` (``trax check``) also leaves the disk alone: a missing server-secret file is not
        created, a throwaway key stands in for it. Such a runtime is for inspection, not for starting.
        """
        self.settings = settings
        self.dry_run = dry_run
        self.pm = pm if pm is not None else make_plugin_manager(settings)
        self.started = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._unsubscribe: list[Any] = []
        self.pm.hook.trax_configure(settings=settings)
        self.registry = collect_registry(self.pm)
        self._build()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> Runtime:
        """A runtime for a deployment file (``overrides`` are merged into it, like extra YAML)."""
        return cls(load_settings(path, **overrides))

    def __repr__(self) -> str:
        return f"<Runtime storage={self.settings.storage.backend} started={self.started}>"

    # --- build (no I/O besides reading the server secret) ------------------

    def _backend(self, category: str, name: str, options: dict[str, Any], where: str) -> Any:
        backend = self.registry.get(category, name, f"{where}.backend")
        opts = validate_options(backend.options, options, f"{where}.options")
        try:
            return backend.factory(opts, self), opts
        except ConfigError:
            raise
        except Exception as exc:  # a plugin's factory bug: say which backend, without a traceback
            why = scrub(f"{exc.__class__.__name__}: {exc}")
            raise ConfigError(f"{where}: backend {name!r} could not be built: {why}") from None

    def _build(self) -> None:
        s = self.settings
        self.storage, _ = self._backend("storage", s.storage.backend, s.storage.options, "storage")
        self.limiter, self.limiter_options = self._backend(
            "rate_limiters", s.limits.backend, s.limits.options, "limits"
        )
        for attr in ("capacity", "refill_per_second"):
            if not hasattr(self.limiter_options, attr):
                raise ConfigError(f"limits.options: the {s.limits.backend!r} limiter does not declare {attr!r}")
        self.blobs, _ = self._backend("blob_stores", s.blobs.backend, s.blobs.options, "blobs")
        self.bus, _ = self._backend("event_buses", s.events.backend, s.events.options, "events")
        self.platforms = {}
        for name, options in s.platforms.items():
            self.platforms[name], _ = self._backend("platforms", name, options or {}, f"platforms.{name}")
        auths = sorted(self.registry.categories.get("authenticators", {}).values(), key=lambda b: (b.order, b.name))
        self.authenticators = [
            b.factory(validate_options(b.options, {}, f"authenticators.{b.name}"), self) for b in auths
        ]
        server_key = load_server_key(s.security, create=not self.dry_run)
        bucket: Any = self.limiter_options  # a plugin's model; both fields checked above
        self.deps = ServiceDeps(
            storage=self.storage,
            bus=self.bus,
            blobs=self.blobs,
            ids=IdGenerator(),
            server_key=server_key,
            cursors=CursorCodec(server_key),
            platforms=self.platforms,
            media=MediaPolicy(
                max_upload_bytes=s.media.max_upload_bytes,
                allowed_content_types=tuple(s.media.allowed_content_types),
                upload_ttl_seconds=s.media.upload_ttl_seconds,
            ),
            key_rate_cap=RateLimitOverride(
                capacity=int(bucket.capacity), refill_per_second=float(bucket.refill_per_second)
            ),
        )
        self.services = Services(self.deps)
        self.media_tokens = MediaTokens(
            s.ingest.tokens,
            self.storage,
            server_key,
            urls=lambda path, action, token, roles: ingest_urls(s.ingest, path, action, token, roles, self.transports),
            path_exists=self.services.sources.by_path,
            stream_keys=self.services.sources.by_stream_key,
        )
        self.hub = PathHub(
            self.services.sources,
            idle_timeout=s.ingest.idle_timeout_seconds,
            max_readers_per_path=s.ingest.max_readers_per_path,
            publisher_takeover=s.ingest.publisher_takeover,
            keyframe_warning_seconds=s.ingest.keyframe_warning_seconds,
        )
        self.deps.ingest = HubView(self.hub)  # live media facts for stream-status; ending a rotated key's session
        self.broadcasts = None
        if s.broadcast.enabled:
            # imported here: the media stack (PyAV, codecs) loads only for deployments that broadcast
            from trax.broadcast.manager import Broadcasts
            from trax.broadcast.studio import BroadcastEnv

            env = BroadcastEnv(
                hub=self.hub,
                services=self.services,
                storage=self.storage,
                blobs=self.blobs,
                platforms=self.platforms,
                settings=s.broadcast,
            )
            self.broadcasts = Broadcasts(env)
            self.deps.broadcast = self.broadcasts
        self.transports = {}
        extra = s.ingest.model_extra or {}
        for name in self.registry.categories.get("transports", {}):
            raw = extra.get(name)
            if raw is None:
                continue
            if not isinstance(raw, dict):
                raise ConfigError(f"ingest.{name}: must be a mapping of the transport's options")
            options = dict(raw)
            if not _flag(options.pop("enabled", False), f"ingest.{name}.enabled"):
                continue
            self.transports[name], _ = self._backend("transports", name, options, f"ingest.{name}")
        unknown = sorted(set(extra) - set(self.registry.categories.get("transports", {})))
        if unknown:
            known = ", ".join(self.registry.names("transports")) or "(none)"
            raise ConfigError(f"ingest.{unknown[0]}: unknown transport; known: {known}")

    # --- lifecycle ------------------------------------------------------------

    def _impls(self, hook_name: str, *, reverse: bool = False) -> list[Any]:
        """A lifecycle hook's implementations in pluggy's call order (``tryfirst`` first, then the
        most recently registered), or the reverse; hook wrappers do not apply to these hooks."""
        impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if not (i.hookwrapper or i.wrapper)]
        return impls if reverse else impls[::-1]

    async def _call_each(self, hook_name: str, *, reverse: bool = False, isolate: bool, **kwargs: Any) -> None:
        # Each plugin is called on its own, awaiting what it returns: through pluggy, the first
        # implementation to raise would keep every later one from running at all.
        for impl in self._impls(hook_name, reverse=reverse):
            try:
                result = impl.function(*(kwargs[name] for name in impl.argnames))
                if inspect.isawaitable(result):
                    await result
            except Exception:
                if not isolate:
                    raise
                log.exception("plugin %s: %s failed", impl.plugin_name, hook_name)

    async def _on_event(self, event: Event) -> None:
        await self._call_each("trax_event", isolate=True, event=event, runtime=self)

    async def start(self, *, transports: bool = False) -> Runtime:
        """Open every backend, run ``trax_startup``; with ``transports=True`` start ingest listeners too."""
        if self.started:
            return self
        if self.dry_run:
            raise RuntimeError("a dry-run runtime (trax check) cannot be started")
        opened: list[Any] = []
        try:
            for backend in (self.storage, self.limiter, self.blobs, self.bus):
                await backend.open()
                opened.append(backend)
            self._unsubscribe.append(self.bus.subscribe(self._on_event))
            self._tasks.append(asyncio.create_task(self.services.keys.run_usage_flusher(), name="trax-key-usage"))
            if isinstance(self.blobs, PartialSweeper):
                # what a process killed mid-upload left goes now, and what a peer's crash leaves goes later
                await self._sweep_partials(self.blobs)
                self._tasks.append(asyncio.create_task(self._sweep_partials_forever(self.blobs), name="trax-parts"))
            await self.media_tokens.open()
            await self._call_each("trax_startup", isolate=False, runtime=self)
            self.started = True
            if self.broadcasts is not None:
                try:
                    await self.broadcasts.recover_recordings()
                except Exception:
                    log.exception("storing recordings left by an earlier run failed")
            if transports:
                await self.start_transports()
        except BaseException:
            await self._shutdown(opened)
            raise
        return self

    async def _sweep_partials(self, blobs: PartialSweeper) -> None:
        try:
            removed = await blobs.sweep_partials(older_than_seconds=self.settings.media.stale_part_seconds)
        except Exception:
            log.exception("removing stale partial blobs failed")
            return
        if removed:
            log.info("removed %d stale partial blob(s)", removed)

    async def _sweep_partials_forever(self, blobs: PartialSweeper) -> None:
        while True:
            await asyncio.sleep(self.settings.media.part_sweep_interval_seconds)
            await self._sweep_partials(blobs)

    async def start_transports(self) -> None:
        for name, transport in self.transports.items():
            log.info("starting %s ingest", name)
            await transport.start()

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        for transport in reversed(list(self.transports.values())):
            with contextlib.suppress(Exception):
                await transport.stop()
        if self.broadcasts is not None:
            try:
                await self.broadcasts.close()
            except Exception:
                log.exception("stopping the studios' broadcasts failed")
        try:
            await self.hub.close()
            await self.media_tokens.close()
        except Exception:
            log.exception("closing the ingest hub failed")
        await self._call_each("trax_shutdown", reverse=True, isolate=True, runtime=self)
        await self._shutdown([self.storage, self.limiter, self.blobs, self.bus])

    async def _shutdown(self, opened: Iterable[Any]) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for unsub in self._unsubscribe:
            unsub()
        self._unsubscribe.clear()
        for backend in reversed(list(opened)):
            try:
                await backend.close()
            except Exception:
                log.exception("closing %r failed", backend)

    async def __aenter__(self) -> Runtime:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def describe(self) -> dict[str, Any]:
        """The chosen plugins, for ``trax check``."""
        s = self.settings
        return {
            "storage": s.storage.backend,
            "limits": s.limits.backend,
            "blobs": s.blobs.backend,
            "events": s.events.backend,
            "platforms": sorted(self.platforms),
            "transports": sorted(self.transports),
            "authenticators": [a.name for a in self.authenticators],
            "writeEnabled": s.public_api.write_enabled,
        }
