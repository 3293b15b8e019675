"""CORS for a WHIP/WHEP ``OPTIONS`` that is not a pre-flight.

Litestar's CORS middleware answers every cross-origin ``OPTIONS`` as a pre-flight, so a page asking the endpoint
what it offers (``Allow``, ``Accept-Post``, the ICE servers in ``Link``, as RFC 9725 describes) never reaches the
handler. A pre-flight names the method it asks about (``Access-Control-Request-Method``); an ``OPTIONS`` without
it goes to the handler here, with Litestar's own simple-request headers (allowed origin, exposed headers) added.
"""

from __future__ import annotations

from typing import Any

from litestar.config.cors import CORSConfig
from litestar.datastructures import Headers, MutableScopeHeaders

Scope = dict[str, Any]
ASGIApp = Any


class RealOptionsCors:
    """ASGI wrapper (outside Litestar's own CORS) for the non-pre-flight ``OPTIONS`` case only."""

    def __init__(self, app: ASGIApp, config: CORSConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = Headers.from_scope(scope)  # type: ignore[arg-type]
        origin = headers.get("origin")
        if not origin or "access-control-request-method" in headers:
            await self.app(scope, receive, send)
            return
        # hidden from Litestar's middleware, which would answer it as a pre-flight
        inner = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"origin"]}
        allowed = self.config.is_origin_allowed(origin)

        async def wrapped_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and allowed:
                message.setdefault("headers", [])
                out = MutableScopeHeaders.from_message(message=message)  # type: ignore[arg-type]
                out.update(self.config.simple_headers)
                if not self.config.is_allow_all_origins:
                    out["Access-Control-Allow-Origin"] = origin
                    out["Vary"] = "Origin"
            await send(message)

        await self.app(inner, receive, wrapped_send)
