"""API keys: only a keyed hash of the secret is ever stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from trax.domain.base import Entity
from trax.domain.keyed_hash import keyed_hash

SECRET_PREFIX = "sk_live_"
DISPLAY_PREFIX_LEN = 12


@dataclass(kw_only=True, slots=True)
class RateLimitOverride:
    capacity: int
    refill_per_second: float


@dataclass(kw_only=True, slots=True)
class ApiKey(Entity):
    KIND = "api_key"
    PREFIX = "key"

    name: str
    prefix: str
    key_hash: str = field(repr=False)
    scopes: tuple[str, ...]
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    rate_limit: RateLimitOverride | None = None

    def unique_keys(self) -> dict[str, str]:
        # by id too, so an operator can revoke a key knowing only its id
        return {"api_key.hash": self.key_hash, "api_key.id": self.id}

    def is_active(self, now: datetime) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or self.expires_at > now


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str, server_key: bytes) -> str:
    """A keyed hash of the secret: a stolen database alone cannot confirm a guessed secret."""
    return keyed_hash(server_key, secret.encode("utf-8"), person=b"trax-secret").hex()


def looks_like_secret(value: str) -> bool:
    return value.startswith(SECRET_PREFIX) and 16 <= len(value) <= 128
