"""One error hierarchy; each class carries the ``/v1`` error code and HTTP status.

The server turns any :class:`TraxError` into the documented envelope; the SDK
turns an envelope back into the same class, so library, server and client
speak one vocabulary.
"""

from __future__ import annotations

from typing import ClassVar


class TraxError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "An unexpected error occurred."

    def __init__(
        self,
        message: str | None = None,
        *,
        param: str | None = None,
        required_scope: str | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.param = param
        self.required_scope = required_scope
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.request_id = request_id
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidRequest(TraxError):
    code, status, default_message = "invalid_request", 400, "The request is invalid."


class Unauthorized(TraxError):
    code, status, default_message = "unauthorized", 401, "A valid credential is required."


class Forbidden(TraxError):
    code, status, default_message = "forbidden", 403, "The credential lacks the required scope."


class NotFound(TraxError):
    code, status, default_message = "not_found", 404, "No such resource."


class MethodNotAllowed(TraxError):
    code, status, default_message = "method_not_allowed", 405, "Method not allowed on this path."


class Conflict(TraxError):
    code, status, default_message = "conflict", 409, "The action contradicts the current state."


class PayloadTooLarge(TraxError):
    code, status, default_message = "payload_too_large", 413, "The request body is too large."


class UnsupportedMediaType(TraxError):
    code, status, default_message = "unsupported_media_type", 415, "Unsupported content type."


class RateLimited(TraxError):
    code, status, default_message = "rate_limited", 429, "Rate limit exceeded; retry later."


class InternalError(TraxError):
    code, status, default_message = "internal_error", 500, "An unexpected error occurred."


class WriteDisabled(TraxError):
    code, status, default_message = (
        "write_disabled",
        503,
        "Writes are disabled on this deployment (PUBLIC_API_WRITE_ENABLED is off).",
    )


class Unavailable(TraxError):
    code, status, default_message = "unavailable", 503, "A backing service is unavailable; retry later."


ERRORS_BY_CODE: dict[str, type[TraxError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        RateLimited,
        InternalError,
        WriteDisabled,
        Unavailable,
    )
}


def error_for_code(code: str) -> type[TraxError]:
    """The class for a wire code; unknown (newer) codes map to the base class."""
    return ERRORS_BY_CODE.get(code, TraxError)
