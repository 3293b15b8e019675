"""What a caller may hand out through the keys API: nothing it does not hold itself.

``keys:manage`` lets a key manage the account's keys, not raise itself above its own
rights. So, for a caller that is an API key (the operator at the CLI or in a notebook keeps
full power):

* **scopes**: a key it creates, rotates (and so learns the secret of) or revokes must have
  only scopes the caller holds; revoking a more powerful key would let a weak key cut off
  the account's strong one;
* **rate limit**: a per-key ``rateLimit`` may lower the deployment's default bucket, not
  raise it; more is the operator's call (rotating an operator-raised key is left to the key
  itself, which gains nothing by it);
* **lifetime**: a key may not mint one that outlives it (an expiring key's new key inherits
  its end when ``expiresAt`` is not given);
* **rotated-out keys**: a key whose revocation is scheduled (the old key during a rotation's
  grace period) still authenticates requests but mints no secret at all, or a leaked old
  secret could outlast its own rotation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from trax.domain.errors import Forbidden
from trax.domain.keys import ApiKey, RateLimitOverride
from trax.services.principal import Principal


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def may_mint(actor: Principal) -> None:
    if actor.superseded:
        raise Forbidden(
            "This key has been rotated out (its revocation is scheduled): it cannot create or rotate keys; "
            "use its replacement."
        )


def check_scopes(actor: Principal, scopes: Iterable[str], verb: str) -> None:
    if actor.is_operator:
        return
    missing = [s for s in scopes if s not in actor.scopes]
    if missing:
        raise Forbidden(
            f"A key cannot {verb} a key with scopes it does not hold itself: {', '.join(missing)}.",
            required_scope=missing[0],
        )


def check_rate_limit(actor: Principal, rate_limit: RateLimitOverride | None, cap: RateLimitOverride | None) -> None:
    if actor.is_operator or rate_limit is None or cap is None:
        return
    if rate_limit.capacity > cap.capacity or rate_limit.refill_per_second > cap.refill_per_second:
        raise Forbidden(
            f"rateLimit may only lower the deployment's default bucket (capacity {cap.capacity}, "
            f"refillPerSecond {cap.refill_per_second:g}); a higher one is set by the operator.",
            param="rateLimit",
        )


def check_lifetime(actor: Principal, ends_at: datetime | None, verb: str) -> None:
    if actor.is_operator or actor.ends_at is None:
        return
    if ends_at is None or ends_at > actor.ends_at:
        raise Forbidden(
            f"This key expires at {_iso(actor.ends_at)}: it cannot {verb} a key that outlives it (expiresAt).",
            param="expiresAt",
        )


def check_create(
    actor: Principal,
    scopes: Iterable[str],
    rate_limit: RateLimitOverride | None,
    expires_at: datetime | None,
    cap: RateLimitOverride | None,
) -> None:
    if actor.is_operator:
        return
    may_mint(actor)
    check_scopes(actor, scopes, "create")
    check_rate_limit(actor, rate_limit, cap)
    check_lifetime(actor, expires_at, "create")


def check_rotate(actor: Principal, target: ApiKey, cap: RateLimitOverride | None) -> None:
    if actor.is_operator:
        return
    may_mint(actor)
    if target.id == actor.key_id:
        return  # a key replacing itself gains nothing it did not have
    check_scopes(actor, target.scopes, "rotate")
    check_rate_limit(actor, target.rate_limit, cap)
    check_lifetime(actor, target.expires_at, "rotate")


def check_revoke(actor: Principal, target: ApiKey) -> None:
    if actor.is_operator or target.id == actor.key_id:
        return
    check_scopes(actor, target.scopes, "revoke")
