"""API keys: create (secret shown once), list, revoke, rotate, and authenticate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import datetime, timedelta

from trax.domain.errors import Conflict, InvalidRequest, NotFound, Unauthorized, Unavailable
from trax.domain.keys import DISPLAY_PREFIX_LEN, ApiKey, RateLimitOverride, hash_secret, looks_like_secret, new_secret
from trax.domain.pages import Page
from trax.domain.scopes import normalize_scopes, unknown_scopes
from trax.interfaces import Insert, Update
from trax.services import key_policy, validation
from trax.services.deps import ServiceDeps
from trax.services.paging import keyset_page
from trax.services.principal import Principal

log = logging.getLogger(__name__)

KEYS_SCOPE = "keys:manage"


class KeyService:
    def __init__(self, deps: ServiceDeps) -> None:
        self._d = deps
        self._usage: dict[str, datetime] = {}

    # --- management -----------------------------------------------------

    async def create(
        self,
        actor: Principal,
        *,
        name: str,
        scopes: list[str] | tuple[str, ...],
        expires_at: datetime | None = None,
        rate_limit: RateLimitOverride | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret. The secret is not kept and cannot be shown again."""
        actor.require(KEYS_SCOPE)
        name = validation.text(name, "name", max_len=100)
        if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
            raise InvalidRequest("scopes must be a list of scope names.", param="scopes")
        bad = unknown_scopes(scopes)
        if bad:
            raise InvalidRequest(f"Unknown scope: {bad[0]!r}.", param="scopes")
        if not scopes:
            raise InvalidRequest("At least one scope is required.", param="scopes")
        if rate_limit is not None and (rate_limit.capacity < 1 or rate_limit.refill_per_second <= 0):
            raise InvalidRequest("rateLimit needs capacity >= 1 and refillPerSecond > 0.", param="rateLimit")
        if expires_at is None and not actor.is_operator:
            expires_at = actor.ends_at  # a key's new key ends when it does unless told otherwise
        key_policy.check_create(actor, scopes, rate_limit, expires_at, self._d.key_rate_cap)
        key, secret = self._new_key(actor.account_id, name, normalize_scopes(scopes), expires_at, rate_limit)
        await self._d.storage.apply([Insert(key)])
        return key, secret

    def _new_key(
        self,
        account_id: str,
        name: str,
        scopes: tuple[str, ...],
        expires_at: datetime | None,
        rate_limit: RateLimitOverride | None,
    ) -> tuple[ApiKey, str]:
        secret = new_secret()
        now = self._d.now()
        key = ApiKey(
            id=self._d.new_id("key"),
            account_id=account_id,
            created_at=now,
            updated_at=now,
            name=name,
            prefix=secret[:DISPLAY_PREFIX_LEN],
            key_hash=hash_secret(secret, self._d.server_key),
            scopes=scopes,
            expires_at=expires_at,
            rate_limit=rate_limit,
        )
        return key, secret

    async def list(self, actor: Principal, *, limit: int | None = None, cursor: str | None = None) -> Page[ApiKey]:
        actor.require(KEYS_SCOPE)
        return await keyset_page(self._d, ApiKey, actor.account_id, limit=limit, cursor=cursor)

    async def get(self, actor: Principal, key_id: str) -> ApiKey:
        actor.require(KEYS_SCOPE)
        key = await self._d.storage.get(ApiKey, actor.account_id, key_id)
        if key is None:
            raise NotFound("No such API key.")
        return key

    async def revoke(self, actor: Principal, key_id: str, *, at: datetime | None = None) -> ApiKey:
        key = await self.get(actor, key_id)
        key_policy.check_revoke(actor, key)
        now = self._d.now()
        when = at or now
        if key.revoked_at is not None and key.revoked_at <= when:
            return key  # revoking twice is not an error: the outcome is the same
        revoked = replace(key, revoked_at=when, updated_at=self._d.bump(key.updated_at))
        await self._d.storage.apply([Update(revoked)])
        return revoked

    async def rotate(self, actor: Principal, key_id: str, *, grace_seconds: int = 0) -> tuple[ApiKey, str]:
        """A new key with the same name, scopes and limits; the old one revoked after the grace period."""
        if not 0 <= grace_seconds <= 7 * 24 * 3600:
            raise InvalidRequest("gracePeriodSeconds must be 0..604800.", param="gracePeriodSeconds")
        old = await self.get(actor, key_id)
        now = self._d.now()
        if not old.is_active(now):
            raise Conflict("A revoked or expired key cannot be rotated.")
        if old.revoked_at is not None:
            # its replacement exists already: a second rotation would mint a second live successor
            raise Conflict("This key has already been rotated (its revocation is scheduled); rotate its replacement.")
        key_policy.check_rotate(actor, old, self._d.key_rate_cap)
        new, secret = self._new_key(old.account_id, old.name, old.scopes, old.expires_at, old.rate_limit)
        retired = replace(
            old, revoked_at=now + timedelta(seconds=grace_seconds), updated_at=self._d.bump(old.updated_at)
        )
        await self._d.storage.apply([Insert(new), Update(retired, expect_updated_at=old.updated_at)])
        return new, secret

    # --- the per-request path -------------------------------------------

    async def authenticate(self, secret: str) -> Principal:
        """One storage round trip: look the key up by its keyed hash."""
        if not looks_like_secret(secret):
            raise Unauthorized("The API key is malformed.")
        key = await self._d.storage.find_unique(ApiKey, "api_key.hash", hash_secret(secret, self._d.server_key))
        now = self._d.now()
        if key is None:
            raise Unauthorized("The API key is unknown.")
        if not key.is_active(now):
            raise Unauthorized("The API key is revoked or expired.")
        self._usage[key.id] = now  # flushed in bulk by flush_usage(), never a write per request
        ends = [t for t in (key.expires_at, key.revoked_at) if t is not None]
        return Principal(
            account_id=key.account_id,
            scopes=frozenset(key.scopes),
            key_id=key.id,
            rate_limit=key.rate_limit,
            ends_at=min(ends) if ends else None,
            superseded=key.revoked_at is not None,
        )

    async def flush_usage(self) -> int:
        """Write buffered ``last_used_at`` times; returns how many keys were touched."""
        if not self._usage:
            return 0
        batch, self._usage = self._usage, {}
        try:
            await self._d.storage.touch_keys(batch)
        except Unavailable as exc:
            # an outage is already reported by every request it fails; one line, no traceback
            log.warning("could not record API key usage for %d keys: %s", len(batch), exc.message)
            self._requeue(batch)
            return 0
        except Exception:  # usage times are advisory: never let them break serving
            log.warning("could not record API key usage for %d keys", len(batch), exc_info=True)
            self._requeue(batch)
            return 0
        return len(batch)

    def _requeue(self, batch: dict[str, datetime]) -> None:
        for k, v in batch.items():
            self._usage.setdefault(k, v)

    async def run_usage_flusher(self, interval: float = 5.0) -> None:
        """Flush usage every ``interval`` seconds until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(interval)
                await self.flush_usage()
        finally:
            with contextlib.suppress(Exception):
                await self.flush_usage()
