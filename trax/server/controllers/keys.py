"""``/v1/keys``: an account manages its own API keys (secrets shown once)."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from trax.domain.base import utcnow
from trax.domain.keys import RateLimitOverride
from trax.server.routes import Actor, Cursor, Limit, Svc, created, route
from trax.server.wire import ApiKeyPage, ApiKeyWithSecret, KeyCreate, KeyRotate, future_time, key_out, key_with_secret


class KeyController(Controller):
    path = "/keys"
    tags = ["keys"]

    @get("/", **route("listKeys", "keys:manage", summary="List the account's API keys"))
    async def list_keys(self, svc: Svc, actor: Actor, limit: Limit = 50, cursor: Cursor = "") -> ApiKeyPage:
        page = await svc.keys.list(actor, limit=limit, cursor=cursor)
        return ApiKeyPage(data=[key_out(k) for k in page.data], next_cursor=page.next_cursor)

    @post(
        "/",
        status_code=201,
        **route("createKey", "keys:manage", summary="Create an API key (secret shown once)", body=True, mutating=True),
    )
    async def create_key(self, svc: Svc, actor: Actor, data: JSONBody[KeyCreate]) -> Response[ApiKeyWithSecret]:
        rl = data.rate_limit
        key, secret = await svc.keys.create(
            actor,
            name=data.name,
            scopes=list(data.scopes),
            expires_at=None if data.expires_at is None else future_time(data.expires_at, "expiresAt", utcnow()),
            rate_limit=None
            if rl is None
            else RateLimitOverride(capacity=rl.capacity, refill_per_second=rl.refill_per_second),
        )
        return created(key_with_secret(key, secret), f"/v1/keys/{key.id}")

    @delete(
        "/{keyId:str}", status_code=204, **route("revokeKey", "keys:manage", summary="Revoke an API key", mutating=True)
    )
    async def revoke_key(self, svc: Svc, actor: Actor, keyId: FromPath[str]) -> None:
        await svc.keys.revoke(actor, keyId)

    @post(
        "/{keyId:str}/rotate",
        status_code=201,
        **route(
            "rotateKey",
            "keys:manage",
            summary="Replace a key: a new secret now, the old one revoked after gracePeriodSeconds",
            body=True,
            body_optional=True,
            mutating=True,
        ),
    )
    async def rotate_key(
        self, svc: Svc, actor: Actor, keyId: FromPath[str], data: JSONBody[KeyRotate | None] = None
    ) -> Response[ApiKeyWithSecret]:
        grace = data.grace_period_seconds if data is not None else 0
        key, secret = await svc.keys.rotate(actor, keyId, grace_seconds=grace)
        return created(key_with_secret(key, secret), f"/v1/keys/{key.id}")
