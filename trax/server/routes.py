"""What every /v1 route declares once, next to its definition: operation id, scope, errors.

``route("listStudios", "studios:read")`` returns the decorator keywords: the
``opt`` the gate enforces, the ``operation_id`` codegen names methods after,
and the documented error responses (always overriding Litestar's own 400).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from trax.runtime import Runtime
from trax.server.fastpath import FastList
from trax.server.wire import ErrorEnvelope
from trax.services import Principal, Services

ERROR_DESCRIPTIONS = {
    400: "Invalid request: malformed JSON, wrong types, unknown fields, failed constraints, bad limit or cursor.",
    401: "No credential, or an unknown, malformed, revoked or expired one.",
    403: "The credential lacks the route's scope (named in requiredScope).",
    404: "No such route or resource (another account's objects included).",
    405: "Known path, wrong method.",
    409: "The action contradicts the current state.",
    413: "The request body is too large.",
    415: "The body is not application/json.",
    429: "The credential's rate limit is exhausted; see Retry-After.",
    500: "An unexpected error (logged with the request id).",
    503: "Writes are disabled (write_disabled) or a backing service is down (unavailable).",
}

Limit = Annotated[
    int,
    QueryParameter(ge=1, description="Page size, 1..200 (larger values are clamped to 200)."),
]
Cursor = Annotated[
    str,
    QueryParameter(description="Opaque cursor from a previous page's nextCursor; empty starts at the beginning."),
]


def errors(*codes: int) -> dict[int, ResponseSpec]:
    return {
        c: ResponseSpec(data_container=ErrorEnvelope, description=ERROR_DESCRIPTIONS[c], generate_examples=False)
        for c in sorted({400, *codes})
    }


def route(
    operation: str,
    scope: str | None,
    *,
    summary: str,
    body: bool = False,
    body_optional: bool = False,
    mutating: bool = False,
    extra_errors: tuple[int, ...] = (),
    public: bool = False,
    signed: bool = False,
    raw_body: bool = False,
    responses: dict[int, ResponseSpec] | None = None,
    fast: FastList | None = None,
) -> dict[str, Any]:
    codes: set[int] = {429, 500}
    if not public:
        codes |= {401, 404}
    if scope is not None:
        codes.add(403)
    if mutating:
        codes |= {503, 409}
    if body:
        codes |= {413, 415}
    codes |= set(extra_errors)
    opt: dict[str, Any] = {"operation": operation, "scope": scope}
    if body:
        opt["body"] = "json-optional" if body_optional else "json"
    if public:
        opt["public"] = True
    if signed:
        opt["signed"] = True
    if raw_body:
        opt["raw_body"] = True
    if fast is not None:
        opt["fast"] = fast
    return {
        "operation_id": operation,
        "summary": summary,
        "opt": opt,
        "responses": {**errors(*codes), **(responses or {})},
    }


async def _actor(request: Request[Any, Any, Any], svc: Svc) -> Principal:
    # depends on svc only so Litestar resolves the two in sequence, not in a per-request task group
    principal: Principal = request.scope["user"]  # set by the gate
    return principal


def dependencies(runtime: Runtime) -> dict[str, Provide]:
    """Per app: the runtime and its services are fixed, so they are provided once and cached."""

    async def _runtime() -> Runtime:
        return runtime

    async def _services() -> Services:
        return runtime.services

    return {
        "svc": Provide(_services, use_cache=True),
        "rt": Provide(_runtime, use_cache=True),
        "actor": Provide(_actor),
    }


def created(content: Any, location: str) -> Response[Any]:
    return Response(content, status_code=201, headers={"Location": location})


Svc = NamedDependency[Services]
Actor = NamedDependency[Principal]
Rt = NamedDependency[Runtime]
