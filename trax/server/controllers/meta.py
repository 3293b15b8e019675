"""Meta routes, no credential: health, the OpenAPI document, and the media-token JWKS."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute

from trax import __version__
from trax.domain.errors import TraxError, Unavailable
from trax.server.gate import LIMITER_DOWN_KEY
from trax.server.openapi import apply_deployment, finish, to_openapi_30
from trax.server.routes import Rt, route
from trax.server.wire import Health

API_VERSION = "1.0.0"


@get(
    "/health",
    tags=["meta"],
    **route(
        "getHealth",
        None,
        summary="Liveness and storage reachability",
        public=True,
        responses={
            503: ResponseSpec(
                data_container=Health, description="Storage (or the rate limiter) is unreachable (degraded)."
            )
        },
    ),
)
async def health(rt: Rt, request: Request[Any, Any, Any]) -> Response[Health]:
    try:
        if request.scope["state"].get(LIMITER_DOWN_KEY):
            raise Unavailable("The rate limiter is unavailable.")
        await rt.storage.ping()
    except (TraxError, OSError):
        return Response(Health(status="degraded", version=__version__, api_version=API_VERSION), status_code=503)
    return Response(Health(status="ok", version=__version__, api_version=API_VERSION))


def route_opts(app: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Each operation's ``opt`` by ``(path, METHOD)``, for what the document cannot infer."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in app.routes:
        if isinstance(r, HTTPRoute):
            for handler in r.route_handlers:
                for method in handler.http_methods:
                    out[(r.path_format, method)] = dict(handler.opt)
    return out


@get(
    "/openapi.json",
    media_type="application/json",
    tags=["meta"],
    **route("getOpenApi", None, summary="This API's OpenAPI 3.0 document", public=True),
)
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    state = request.app.state
    doc: dict[str, Any] | None = state.get("openapi30")
    if doc is None:
        media = request.app.state.runtime.settings.media
        doc = finish(to_openapi_30(request.app.openapi_schema.to_schema()), route_opts(request.app))
        doc = apply_deployment(doc, content_types=media.allowed_content_types, max_upload_bytes=media.max_upload_bytes)
        state["openapi30"] = doc
    return doc


@get(
    "/.well-known/jwks.json",
    media_type="application/json",
    tags=["meta"],
    **route("getJwks", None, summary="Public keys that verify media tokens", public=True, extra_errors=(503,)),
)
async def jwks(rt: Rt) -> dict[str, Any]:
    tokens = getattr(rt, "media_tokens", None)
    if tokens is None:
        raise Unavailable("Media tokens are not available on this deployment.", retry_after=60)
    keys: dict[str, Any] = tokens.jwks()
    return keys
