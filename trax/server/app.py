"""The Litestar app factory: one core plugin wires routes, auth, limits, errors and OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.exceptions import NotFoundException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Server, Tag
from litestar.plugins import InitPlugin
from litestar.routes import HTTPRoute

from trax import __version__
from trax.runtime import Runtime
from trax.server.auth_throttle import AUTH_THROTTLE_STATE, AuthThrottle
from trax.server.controllers.chat import ChatController
from trax.server.controllers.connections import ConnectionController
from trax.server.controllers.destinations import DestinationController
from trax.server.controllers.keys import KeyController
from trax.server.controllers.media import MediaController, UploadController
from trax.server.controllers.meta import API_VERSION, health, jwks, openapi_json
from trax.server.controllers.program import ProgramTokenController
from trax.server.controllers.sources import SessionTokenController, SourceController
from trax.server.controllers.studios import StudioController
from trax.server.errors import exception_handler, make_before_send
from trax.server.gate import Gate
from trax.server.routes import dependencies
from trax.server.schema import StrictStructSchemaPlugin

__all__ = ["TraxApiPlugin", "create_app"]


async def _hidden(*_: Any) -> None:
    raise NotFoundException()


class TraxApiPlugin(InitPlugin):
    """Everything /v1 needs, added to an app config in small steps."""

    def __init__(self, runtime: Runtime, *, start_transports: bool = False) -> None:
        self.runtime = runtime
        self.start_transports = start_transports
        self.allow_by_path: dict[str, str] = {}

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        self._routes(app_config)
        self._errors(app_config)
        self._openapi(app_config)
        self._lifespan(app_config)
        app_config.state["runtime"] = self.runtime
        limits = self.runtime.settings.limits
        # one per app, shared by every route's gate (Litestar builds a gate per route handler)
        app_config.state[AUTH_THROTTLE_STATE] = AuthThrottle(
            self.runtime.limiter, limits.auth_failure_capacity, limits.auth_failure_refill_per_second
        )
        app_config.debug = False
        return app_config

    def _routes(self, app_config: AppConfig) -> None:
        handlers: list[Any] = [
            health,
            openapi_json,
            StudioController,
            SourceController,
            DestinationController,
            ConnectionController,
            ChatController,
            MediaController,
            UploadController,
            KeyController,
        ]
        if self.runtime.settings.public_api.session_tokens_enabled:
            handlers.extend([SessionTokenController, ProgramTokenController])
        gate = DefineMiddleware(Gate)
        # on the router: Litestar 2.25 ignores AppConfig.request_max_body_size set by a plugin
        limit = self.runtime.settings.server.max_body_bytes
        app_config.route_handlers.append(
            Router("/v1", route_handlers=handlers, middleware=[gate], request_max_body_size=limit)
        )
        app_config.route_handlers.append(Router("/", route_handlers=[jwks], middleware=[gate]))
        app_config.dependencies.update(dependencies(self.runtime))

    def _errors(self, app_config: AppConfig) -> None:
        app_config.exception_handlers = {Exception: exception_handler}
        app_config.before_send.append(make_before_send(self.allow_by_path))

    def _openapi(self, app_config: AppConfig) -> None:
        app_config.openapi_config = OpenAPIConfig(
            title="TRaX Developer API",
            version=API_VERSION,
            description=f"The /v1 Developer API of a trax deployment (trax {__version__}).",
            servers=[Server(url="/")],
            tags=[
                Tag(name=n)
                for n in ("studios", "sources", "destinations", "connections", "chat", "media", "keys", "meta")
            ],
            render_plugins=[JsonRenderPlugin()],
            # Litestar's own schema router would serve 3.1 and a catch-all; ours is /v1/openapi.json
            openapi_router=Router("/_litestar_openapi", route_handlers=[], guards=[_hidden], include_in_schema=False),
            components=Components(
                security_schemes={
                    "bearerAuth": SecurityScheme(type="http", scheme="bearer", bearer_format="sk_live_*"),
                    "apiKeyAuth": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header"),
                }
            ),
            security=[{"bearerAuth": []}, {"apiKeyAuth": []}],
            use_handler_docstrings=False,
            create_examples=False,
        )

    def _lifespan(self, app_config: AppConfig) -> None:
        runtime, transports, allow = self.runtime, self.start_transports, self.allow_by_path

        @asynccontextmanager
        async def lifespan(app: Litestar) -> AsyncIterator[None]:
            allow.update(allow_map(app))
            await runtime.start(transports=transports)
            try:
                yield
            finally:
                await runtime.stop()

        app_config.lifespan.append(lifespan)


def allow_map(app: Litestar) -> dict[str, str]:
    """Every method each path template answers (for OPTIONS, see errors.make_before_send)."""
    return {r.path_format: ", ".join(sorted(r.methods)) for r in app.routes if isinstance(r, HTTPRoute)}


def create_app(runtime: Runtime, *, start_transports: bool = False) -> Litestar:
    """The /v1 app over ``runtime``; the app's lifespan starts and stops the runtime."""
    return Litestar(
        route_handlers=[],
        # the strict struct plugin must precede Litestar's own, which on_app_init cannot reorder safely
        plugins=[StrictStructSchemaPlugin(), TraxApiPlugin(runtime, start_transports=start_transports)],
        type_encoders={msgspec.Struct: msgspec.to_builtins},
        # Litestar's default logging config sets the host's root logger to INFO; trax serve configures logging
        logging_config=None,
    )
