"""One error envelope for every failure, and the ``X-Request-Id`` on every response.

Litestar's app-level exception handler also sees the router's 404/405, so one
handler covers framework errors, our :class:`TraxError` family and anything
unexpected. ``before_send`` (not middleware, which only runs on matched routes)
stamps the request id and the rate-limit headers onto every response.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import HTTPException, InternalServerException, ValidationException
from litestar.types import Message, Scope

from trax.domain.errors import TraxError
from trax.domain.text import RULE_MESSAGES
from trax.server.requestids import RequestIds

log = logging.getLogger("trax.server")

_RID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
RID_KEY = "trax_request_id"
RATE_KEY = "trax_rate"
_ids = RequestIds()  # a random start and a counter; sharing across apps is harmless
_encoder = msgspec.json.Encoder()

# msgspec quotes a failed pattern as a repr; the name and prose rules get their meaning instead
_RULE_MESSAGES = {repr(pattern): message for pattern, message in RULE_MESSAGES.items()}

_CODES_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}
_MESSAGES_BY_STATUS = {
    401: "A valid credential is required.",
    403: "The credential lacks the required scope.",
    404: "No such route or resource.",
    405: "Method not allowed on this path.",
    413: "The request body is too large.",
    415: "Unsupported content type; send application/json.",
    429: "Rate limit exceeded; retry later.",
    503: "A backing service is unavailable; retry later.",
}


def request_id(scope: Scope) -> str:
    """The request's id: a well-formed client ``X-Request-Id``, else a fresh ``req_`` id."""
    state = scope.setdefault("state", {})
    rid: str | None = state.get(RID_KEY)
    if rid is None:
        incoming = None
        for k, v in scope.get("headers", ()):
            if k == b"x-request-id":
                incoming = v.decode("latin-1")
                break
        rid = incoming if incoming is not None and _RID_OK.match(incoming) else _ids.new()
        state[RID_KEY] = rid
    return rid


def retry_after_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def make_before_send(allow_by_path: dict[str, str]) -> Any:
    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        # nothing else sets these headers, so appending is safe (and cheaper than a headers view)
        raw = message.setdefault("headers", [])
        if not isinstance(raw, list):
            raw = message["headers"] = list(raw)
        raw.append((b"x-request-id", request_id(scope).encode("latin-1")))
        decision = scope.get("state", {}).get(RATE_KEY)
        if decision is not None:
            raw.append((b"ratelimit-limit", str(decision.limit).encode()))
            raw.append((b"ratelimit-remaining", str(max(0, decision.remaining)).encode()))
            raw.append((b"ratelimit-reset", str(max(0, math.ceil(decision.reset_after))).encode()))
        # Litestar's automatic OPTIONS lists only the first handler's methods (bug #4169)
        if scope.get("method") == "OPTIONS" and message["status"] == 204:
            template = scope.get("path_template")
            if template in allow_by_path:
                MutableScopeHeaders.from_message(message)["allow"] = allow_by_path[template]

    return before_send


def envelope(
    code: str, message: str, rid: str, *, param: str | None = None, required_scope: str | None = None
) -> bytes:
    body: dict[str, Any] = {"code": code, "message": message, "requestId": rid}
    if param is not None:
        body["param"] = param
    if required_scope is not None:
        body["requiredScope"] = required_scope
    return _encoder.encode({"error": body})


def _validation_detail(exc: ValidationException) -> tuple[str, str | None]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        msg = str(item.get("message") or "Invalid value.")
        key = item.get("key")
        source = item.get("source")
        if msg.startswith("Object contains unknown field"):
            # the field, under the object it was found in (``program.colour`` for a nested body)
            # (Litestar gives the object's path as ``key``, or leaves it in the message)
            field = re.search(r"field `([^`]+)`", msg)
            found = re.search(r"at `\$\.([^`]+)`", msg)
            parent = found.group(1) if found else (key if key and key != "data" else None)
            if field:
                key = f"{parent}.{field.group(1)}" if parent else field.group(1)
        elif not key:
            found = re.search(r"at `\$\.([^`\[]+)", msg)
            if found:
                key = found.group(1)
        for pattern, meaning in _RULE_MESSAGES.items():
            if pattern in msg:
                msg = meaning
        if source == "body" and key in (None, "", "data"):
            key = "body"
        if msg.startswith("Validation failed for") or (key == "body" and "data" in msg):
            msg = "The request body is missing or not a JSON object."
        return msg.split(" - at `$", 1)[0].rstrip(".") + ".", str(key) if key else None
    detail = str(exc.detail or "")
    if "JSON is malformed" in detail or "truncated" in detail or "malformed" in detail.lower():
        return "The request body is not valid JSON.", "body"
    return "The request is invalid.", None


# Litestar's words when the ASGI server reports ``http.disconnect`` before the body ended
_CLIENT_GONE = "client disconnected prematurely"
CLIENT_GONE_MESSAGE = "The client disconnected before the request body was complete."


def is_client_gone(exc: Exception) -> bool:
    """The client went away mid-body: nothing to answer, nothing wrong with the server."""
    return isinstance(exc, InternalServerException) and exc.detail == _CLIENT_GONE


def is_too_deep(exc: Exception) -> bool:
    """msgspec gave up on a body nested deeper than the interpreter's recursion limit.

    Only the decoder's RecursionError (its message says so) is the client's fault; one from our own
    code stays a 500 with its traceback.
    """
    return isinstance(exc, RecursionError) and "while deserializing" in str(exc)


def _describe(exc: Exception) -> tuple[int, str, str, str | None, str | None, dict[str, str]]:
    """``(status, code, message, param, requiredScope, headers)`` for any exception."""
    if is_too_deep(exc):
        return 400, "invalid_request", "The request body is nested too deeply.", "body", None, {}
    if is_client_gone(exc):
        return 400, "invalid_request", CLIENT_GONE_MESSAGE, "body", None, {}
    if isinstance(exc, TraxError):
        headers = dict(exc.headers)
        if exc.retry_after is not None:
            headers["retry-after"] = str(exc.retry_after)
        elif exc.status in (429, 503) and exc.code != "write_disabled":
            headers.setdefault("retry-after", "1")
        return exc.status, exc.code, exc.message, exc.param, exc.required_scope, headers
    if isinstance(exc, ValidationException):
        msg, param = _validation_detail(exc)
        return 400, "invalid_request", msg, param, None, {}
    if isinstance(exc, HTTPException):
        status = exc.status_code
        headers = {k.lower(): v for k, v in (exc.headers or {}).items() if k.lower() in ("allow", "retry-after")}
        if status == 400:
            detail = str(exc.detail or "")
            if "malformed" in detail.lower() or "truncated" in detail.lower() or "json" in detail.lower():
                return 400, "invalid_request", "The request body is not valid JSON.", "body", None, headers
            return 400, "invalid_request", "The request is invalid.", None, None, headers
        code = _CODES_BY_STATUS.get(status)
        if code is not None:
            return status, code, _MESSAGES_BY_STATUS.get(status, "The request failed."), None, None, headers
        if status < 500:
            return status, "invalid_request", "The request is invalid.", None, None, headers
    return 500, "internal_error", "An unexpected error occurred.", None, None, {}


def exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Litestar calls this synchronously; it must never raise (a raise means a bare 500)."""
    try:
        rid = request_id(request.scope)
        status, code, message, param, required_scope, headers = _describe(exc)
        if status == 401:
            headers.setdefault("www-authenticate", 'Bearer realm="trax"')
        if message is CLIENT_GONE_MESSAGE:
            # the answer goes nowhere; one quiet line, no traceback (a client can do this at will)
            log.info("client disconnected mid-body [request_id=%s] %s %s", rid, request.method, request.url.path)
        elif status == 500:
            log.error("unhandled error [request_id=%s] %s %s", rid, request.method, request.url.path, exc_info=exc)
        elif status == 503 and code == "unavailable":
            log.warning("backing service unavailable [request_id=%s]: %s", rid, type(exc).__name__)
        return Response(
            content=envelope(code, message, rid, param=param, required_scope=required_scope),
            status_code=status,
            headers=headers,
            media_type="application/json",
        )
    except Exception:  # pragma: no cover - last resort, keep the envelope shape
        log.exception("the error handler failed")
        rid = request.scope.get("state", {}).get(RID_KEY, "req_unknown")
        return Response(
            content=envelope("internal_error", "An unexpected error occurred.", rid),
            status_code=500,
            media_type="application/json",
        )
