"""The fused per-route gate: authentication → rate limit → scope → write flag → content type.

One pure-ASGI middleware instead of a chain of guards: guards run after every
middleware (so the order of checks in docs/api.md could not be kept) and each costs a
copy of the handler per request. The router has already resolved the handler,
so each route's declaration (``opt``) is read from ``scope["route_handler"]``.

Route ``opt`` keys (set by :func:`trax.server.routes.route_opt`):

* ``scope``: the one scope the route needs (``None`` with ``public``);
* ``public``: a meta route, no credential, limited per client address;
* ``signed``: authenticated by its own signed URL, not an API key;
* ``body``: ``"json"`` (or ``"json-optional"``) when the route takes a JSON body;
* ``operation``: the operation id, which keys per-route costs;
* ``fast``: a :class:`~trax.server.fastpath.FastList` the gate answers plain GET queries with.
"""

from __future__ import annotations

from typing import Any, cast

from litestar.types import ASGIApp, HTTPResponseStartEvent, HTTPScope, Receive, Scope, Send

from trax.domain.errors import (
    Forbidden,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    WriteDisabled,
)
from trax.interfaces import Decision
from trax.runtime import Runtime
from trax.server.auth_throttle import AUTH_THROTTLE_STATE, AuthThrottle, address_key
from trax.server.errors import RATE_KEY, request_id, retry_after_seconds
from trax.server.fastpath import JSON_HEADERS, FastList, PageBodies, check_page_size
from trax.services.principal import Principal

LIMITER_DOWN_KEY = "trax_limiter_down"
"""Set in the scope state when a meta route ran without its limit because the limiter was unavailable."""
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEYS_SCOPE = "keys:manage"


def _credential(scope: Scope) -> str | None:
    auth = api_key = None
    for k, v in scope["headers"]:
        if k == b"authorization":
            auth = v
        elif k == b"x-api-key":
            api_key = v
    if auth is not None:
        scheme, _, value = auth.decode("latin-1").strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Use 'Authorization: Bearer <key>' or the X-API-Key header.")
        return value.strip()
    if api_key is not None:
        value = api_key.decode("latin-1").strip()
        return value or None
    return None


def _has_body(scope: Scope) -> bool:
    for k, v in scope["headers"]:
        if k == b"content-length":
            return v.strip() not in (b"0", b"")
        if k == b"transfer-encoding":
            return True
    return False


def _is_json(scope: Scope) -> bool:
    for k, v in scope["headers"]:
        if k == b"content-type":
            media = v.decode("latin-1").split(";", 1)[0].strip().lower()
            return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))
    return False


class Gate:
    """Runs before each /v1 route; exceptions it raises become envelope responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.runtime: Runtime | None = None
        # one gate per route handler (Litestar builds the stack per handler), so this is per route
        self.pages = PageBodies()

    def _bind(self, runtime: Runtime, throttle: AuthThrottle) -> None:
        # the runtime comes from app state: Litestar deep-copies routers, so it cannot be a middleware kwarg
        self.runtime = runtime
        s = runtime.settings
        opts: Any = runtime.limiter_options
        self.capacity: int = int(opts.capacity)
        self.refill: float = float(opts.refill_per_second)
        self.costs = dict(s.limits.route_costs)
        self.meta_capacity = s.limits.meta_capacity
        self.meta_refill = s.limits.meta_refill_per_second
        self.account_capacity = s.limits.account_capacity
        self.account_refill = s.limits.account_refill_per_second
        self.auth_throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        scope = cast(HTTPScope, scope)
        request_id(scope)
        if self.runtime is None:
            state = scope["app"].state
            self._bind(state.runtime, state[AUTH_THROTTLE_STATE])
        opt = scope["route_handler"].opt
        method = scope["method"]
        if method == "OPTIONS" or method == "HEAD":
            await self.app(scope, receive, send)
            return
        if opt.get("public") or opt.get("signed"):
            client = scope.get("client")
            try:
                await self._limit(
                    scope, f"addr:{client[0] if client else '-'}", self.meta_capacity, self.meta_refill, 1
                )
            except Unavailable:
                if not opt.get("public"):
                    raise
                # meta routes fail open: health must still report the outage in its own shape
                scope["state"][LIMITER_DOWN_KEY] = True
            if opt.get("signed"):
                self._write_flag(method, None)
            await self.app(scope, receive, send)
            return
        principal = await self._authenticate(scope)
        rl = principal.rate_limit
        cost = self.costs.get(opt.get("operation", ""), 1)
        decision = await self._limit(
            scope,
            principal.rate_limit_key,
            rl.capacity if rl else self.capacity,
            rl.refill_per_second if rl else self.refill,
            cost,
        )
        if self.account_capacity is not None:
            # on top of the key's own bucket: an account's keys share one, however many it creates
            shared = await self._limit(
                scope, f"acct:{principal.account_id}", self.account_capacity, self.account_refill, cost, report=False
            )
            if shared.remaining < decision.remaining:
                scope["state"][RATE_KEY] = shared  # the headers tell the tighter of the two
        required: str | None = opt.get("scope")
        if required is not None and required not in principal.scopes:
            raise Forbidden(f"This credential lacks the '{required}' scope.", required_scope=required)
        self._write_flag(method, required)
        if opt.get("body") and _has_body(scope) and not _is_json(scope):
            raise UnsupportedMediaType("This route takes application/json.")
        scope["user"] = principal
        fast: FastList | None = opt.get("fast")
        if fast is not None and method == "GET":
            assert self.runtime is not None
            body = await fast.body(self.runtime.services, principal, scope["query_string"], self.pages)
            if body is not None:
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [JSON_HEADERS, (b"content-length", str(len(body)).encode())],
                }
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
        if "limit" in scope["route_handler"].parsed_fn_signature.parameters:
            check_page_size(scope["query_string"])
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Principal:
        client = scope.get("client")
        address = address_key(client[0] if client else None)
        credential: str | None = None
        try:
            credential = _credential(scope)
            if not credential:
                raise Unauthorized("A credential is required: 'Authorization: Bearer <key>' or X-API-Key.")
            # before any hash or lookup: an address that keeps failing is refused from memory
            wait = self.auth_throttle.refused_for(address, credential)
            if wait > 0:
                raise RateLimited(
                    "Too many failed authentications from this address; retry later.",
                    retry_after=retry_after_seconds(wait),
                )
            assert self.runtime is not None
            for authenticator in self.runtime.authenticators:
                principal: Principal | None = await authenticator.authenticate(credential)
                if principal is not None:
                    self.auth_throttle.succeeded(credential)
                    return principal
            raise Unauthorized("The credential is not recognised.")
        except Unauthorized:
            await self.auth_throttle.failed(address, credential)
            raise

    async def _limit(
        self, scope: Scope, key: str, capacity: int, refill: float, cost: int, *, report: bool = True
    ) -> Decision:
        assert self.runtime is not None
        decision = await self.runtime.limiter.acquire(key, capacity=capacity, refill_per_second=refill, cost=cost)
        if report or not decision.allowed:
            scope["state"][RATE_KEY] = decision
        if not decision.allowed:
            raise RateLimited(retry_after=retry_after_seconds(decision.retry_after))
        return decision

    def _write_flag(self, method: str, required: str | None) -> None:
        if method not in MUTATING:
            return
        assert self.runtime is not None
        api = self.runtime.settings.public_api
        if api.write_enabled or (required == KEYS_SCOPE and api.keys_writable_when_disabled):
            return
        raise WriteDisabled()
