"""HTTP details of the WHIP/WHEP endpoint: the /v1 error envelope, request ids, credentials."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from trax.domain.errors import InternalError, TraxError

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"


def request_id(request: Request[Any, Any, Any], new_id: Callable[[], str]) -> str:
    rid = request.scope.get("state", {}).get("trax_request_id")
    if isinstance(rid, str):
        return rid
    sent = request.headers.get("x-request-id", "")
    rid = sent if REQUEST_ID_RE.match(sent) else new_id()
    request.scope.setdefault("state", {})["trax_request_id"] = rid
    return rid


def error_response(exc: TraxError, rid: str) -> Response[Any]:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message, "requestId": rid}
    if exc.param:
        body["param"] = exc.param
    headers = {**exc.headers, "X-Request-Id": rid}
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="trax-ingest"')
    return Response({"error": body}, status_code=exc.status, headers=headers, media_type="application/json")


def as_trax_error(exc: Exception) -> TraxError:
    """Litestar's own refusals (unknown route, wrong method, body too large) in our vocabulary."""
    if isinstance(exc, TraxError):
        return exc
    if isinstance(exc, HTTPException):
        from trax.domain.errors import ERRORS_BY_CODE, MethodNotAllowed, NotFound, PayloadTooLarge

        by_status = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}
        cls = by_status.get(exc.status_code)
        if cls is None:
            cls = next((c for c in ERRORS_BY_CODE.values() if c.status == exc.status_code), InternalError)
        err = cls()
        if exc.status_code == 405 and exc.headers:
            err.headers.update({k: v for k, v in exc.headers.items() if k.lower() == "allow"})
        return err
    return InternalError()


def bearer(request: Request[Any, Any, Any]) -> str | None:
    """``Authorization: Bearer <t>`` or, where a header is impossible, ``?access_token=<t>``."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = request.query_params.get("access_token")
    return token or None
