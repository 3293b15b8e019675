"""``/v1`` error envelopes back into the library's own exception classes.

The server turns each :class:`trax.TraxError` subclass into
``{"error": {"code", "message", "requestId", ...}}``; this turns it back, so
``except trax.domain.errors.NotFound`` works the same in-process and remotely.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trax.domain.errors import (
    ERRORS_BY_CODE,
    Conflict,
    Forbidden,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TraxError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    WriteDisabled,
    error_for_code,
)

__all__ = [
    "Conflict",
    "Forbidden",
    "InternalError",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "TraxError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "WriteDisabled",
    "error_from_envelope",
    "parse_retry_after",
]


def parse_retry_after(value: str | None) -> int | None:
    """``Retry-After`` in whole seconds (the contract sends seconds; HTTP dates are not used)."""
    if value is None:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_envelope(status: int, body: Any, headers: Mapping[str, str]) -> TraxError:
    """The exception for an error answer; a body that is no envelope still yields a typed error."""
    envelope = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(envelope, Mapping):
        envelope = {}
    code = envelope.get("code")
    cls = error_for_code(code) if isinstance(code, str) else _by_status(status)
    message = envelope.get("message")
    request_id = envelope.get("requestId") or headers.get("x-request-id")
    err = cls(
        message if isinstance(message, str) and message else None,
        param=envelope.get("param") if isinstance(envelope.get("param"), str) else None,
        required_scope=envelope.get("requiredScope") if isinstance(envelope.get("requiredScope"), str) else None,
        retry_after=parse_retry_after(headers.get("retry-after")),
        headers={k: v for k, v in headers.items() if k.lower() in _KEPT_HEADERS},
        request_id=request_id if isinstance(request_id, str) else None,
    )
    if cls is TraxError:
        # a code newer than this SDK: keep what the server said
        err.code = code if isinstance(code, str) else f"http_{status}"  # type: ignore[misc]
        err.status = status  # type: ignore[misc]
    return err


_KEPT_HEADERS = {"retry-after", "allow", "x-request-id", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}


# 503 is shared by write_disabled and unavailable: without a code, a 503 is taken as an outage (below)
_BY_STATUS: dict[int, type[TraxError]] = {cls.status: cls for cls in ERRORS_BY_CODE.values() if cls.status != 503}


def _by_status(status: int) -> type[TraxError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return Unavailable if status in (502, 503, 504) else TraxError
