"""The WHIP/WHEP HTTP surface (RFC 9725 and the WHEP draft, as docs/ingest.md writes them).

``POST /<path>/whip`` publishes, ``POST /<path>/whep`` plays; both answer
``201`` with the SDP answer, a ``Location`` for the session resource, an
``ETag`` and the ICE servers as ``Link`` headers. ``DELETE`` on the resource
ends the session; ``PATCH`` (trickle ICE / ICE restart) answers ``405``
because aiortc gathers every candidate before answering. CORS comes from
Litestar's middleware so a page on another origin can publish.

Order of checks on a POST: content type (415) → credential (401) → path
provisioned (404) → publisher present / path free (404 / 409) → session caps
(503 server-wide, 429 per credential or account) → offer (400).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Litestar, Request, Response, route
from litestar.config.cors import CORSConfig
from litestar.params import FromPath

from trax.domain.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    TraxError,
    Unauthorized,
    UnsupportedMediaType,
)
from trax.domain.paths import is_valid_path
from trax.ingest.whip.cors import RealOptionsCors
from trax.ingest.whip.http import SDP, TRICKLE, as_trax_error, bearer, error_response, request_id
from trax.ingest.whip.ice import link_headers
from trax.ingest.whip.options import WhipOptions
from trax.ingest.whip.sessions import Session, WebRtcPlane

log = logging.getLogger(__name__)

ENDPOINTS = ("whip", "whep")
AUDIENCE = {"whip": ("talk",), "whep": ("read",)}
ACTION = {"whip": "publish", "whep": "read"}

Authorize = Callable[..., Awaitable[dict[str, Any]]]
PathExists = Callable[[str], Awaitable[Any]]


def _split(rest: str) -> tuple[str, str, str | None]:
    """``/inputs/whip-x/whip`` → (path, "whip", None); ``/inputs/whip-x/whip/<sid>`` → (..., sid)."""
    parts = rest.strip("/").split("/")
    if len(parts) >= 2 and parts[-1] in ENDPOINTS:
        return "/".join(parts[:-1]), parts[-1], None
    if len(parts) >= 3 and parts[-2] in ENDPOINTS:
        return "/".join(parts[:-2]), parts[-2], parts[-1]
    raise NotFound("No WHIP or WHEP endpoint here: use /<path>/whip or /<path>/whep.")


def _account_of(path: str, source: Any) -> str:
    """Whose sessions these are, for the per-account cap: the source's account; a program path's studio."""
    account = getattr(source, "account_id", None)
    if isinstance(account, str):
        return f"account:{account}"
    return f"studio:{path.split('/')[1]}" if path.startswith("studios/") else f"path:{path}"


def create_whip_app(
    plane: WebRtcPlane,
    options: WhipOptions,
    *,
    authorize: Authorize,
    path_exists: PathExists,
    new_request_id: Callable[[], str],
) -> RealOptionsCors:
    links = ", ".join(link_headers(options.ice_servers))

    def rid(request: Request[Any, Any, Any]) -> str:
        return request_id(request, new_request_id)

    def headers(request: Request[Any, Any, Any], **extra: str) -> dict[str, str]:
        out = {"X-Request-Id": rid(request), "Cache-Control": "no-store"}
        out.update(extra)
        return out

    async def create(request: Request[Any, Any, Any], path: str, endpoint: str) -> Response[Any]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != SDP:
            raise UnsupportedMediaType("The body must be an SDP offer (Content-Type: application/sdp).")
        credential = bearer(request)
        if credential is None:
            raise Unauthorized("A media token is required (Authorization: Bearer or ?access_token=).")
        # the credential is checked before the path, so probing paths without one learns nothing
        await authorize(credential, path=path, action=ACTION[endpoint], audiences=AUDIENCE[endpoint])
        if not is_valid_path(path):
            raise NotFound("No source has this stream path.")
        source = await path_exists(path) if path.startswith("inputs/") else None
        if path.startswith("inputs/") and not source:
            raise NotFound("No source has this stream path.")
        account = _account_of(path, source)
        body = await request.body()
        try:
            sdp = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("The SDP offer is not UTF-8 text.") from None
        if endpoint == "whip":
            session, answer = await plane.publish(path, sdp, credential, account=account)
        else:
            session, answer = await plane.play(path, sdp, credential, account=account)
        location = f"/{path}/{endpoint}/{session.id}"
        if not request.headers.get("authorization"):
            # the credential came in the URL: so must the session's, or DELETE on the Location answers 401
            location += f"?access_token={session.issue_resource_key()}"
        extra = {"Location": location, "ETag": session.etag}
        if links:
            extra["Link"] = links
        return Response(answer, status_code=201, media_type=SDP, headers=headers(request, **extra))

    def owned(request: Request[Any, Any, Any], path: str, endpoint: str, sid: str) -> Session:
        session = plane.get(sid)
        if session is None or session.path != path or session.kind != endpoint:
            raise NotFound("No such session.")
        if not session.owns(bearer(request)):
            raise Unauthorized("Present the credential the session was created with.")
        return session

    @route("/{rest:path}", http_method=["POST", "DELETE", "PATCH", "OPTIONS", "GET", "PUT"])
    async def dispatch(request: Request[Any, Any, Any], rest: FromPath[str]) -> Response[Any]:
        path, endpoint, sid = _split(rest)
        method = request.method
        if method == "OPTIONS":  # not a CORS pre-flight (the middleware answers those): what may be done here
            allow = "POST, OPTIONS" if sid is None else "DELETE, PATCH, OPTIONS"
            extra = {"Allow": allow, "Accept-Post": SDP} if sid is None else {"Allow": allow}
            return Response(b"", status_code=204, headers=headers(request, **extra))
        if sid is None:
            if method == "POST":
                return await create(request, path, endpoint)
            raise MethodNotAllowed("Use POST with an SDP offer.", headers={"Allow": "POST, OPTIONS"})
        if method == "DELETE":
            session = owned(request, path, endpoint, sid)
            await plane.end(session)
            return Response(b"", status_code=200, headers=headers(request))
        if method == "PATCH":
            owned(request, path, endpoint, sid)
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != TRICKLE:
                raise UnsupportedMediaType("PATCH takes application/trickle-ice-sdpfrag.")
            # aiortc gathers all candidates before the answer; neither trickle nor ICE restart applies
            raise MethodNotAllowed(
                "Trickle ICE and ICE restarts are not supported: every candidate is in the answer.",
                headers={"Allow": "DELETE, OPTIONS"},
            )
        raise MethodNotAllowed("Use DELETE to end the session.", headers={"Allow": "DELETE, OPTIONS"})

    def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        err = as_trax_error(exc)
        request_id_ = rid(request)
        if err.status >= 500 and not isinstance(exc, TraxError):
            log.error("request %s failed", request_id_, exc_info=exc)
        return error_response(err, request_id_)

    cors = CORSConfig(
        allow_origins=list(options.cors_origins),
        allow_methods=["POST", "DELETE", "PATCH", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-Id"],
        # what RFC 9725 clients read: Location, ETag, Link (ICE servers), Accept-Post/Accept-Patch (OPTIONS)
        expose_headers=["Location", "ETag", "Link", "Accept-Post", "Accept-Patch", "X-Request-Id", "WWW-Authenticate"],
        max_age=600,
    )
    app = Litestar(
        [dispatch],
        cors_config=cors,
        exception_handlers={Exception: on_error},
        request_max_body_size=options.max_body_bytes,
        openapi_config=None,
        # Litestar's default logging config would set the root logger to INFO in the host process
        # (a notebook, say), where httpx then logs request URLs that may carry ?access_token=.
        logging_config=None,
        debug=False,
    )
    return RealOptionsCors(app, cors)
