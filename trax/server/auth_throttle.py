"""Failed authentication, limited per client address before any lookup.

Every credential the gate checks costs a keyed hash and a storage lookup, so a caller
guessing keys is limited by the failures it makes, not only by the requests a valid key
makes. Each failure takes a token from the address's bucket in the deployment's limiter
(``authfail:<address>``; shared by every process with the ``redis`` limiter). When the
bucket is empty the address is remembered here, in this process, until a token is back,
and its requests get ``429`` from a dictionary lookup: no hash, no storage, no limiter
round trip. Successful requests never touch the bucket, so the check costs them one
lookup in an (almost always empty) dictionary.

An address is not a person (NAT, proxies), so a blocked address does not lock out a
credential that authenticated successfully in this process within the last
``GOOD_FOR_SECONDS``: such a credential is let through to the normal authentication (it
is still looked up, so a since-revoked key fails, counts, and loses the pass). Only a
keyed digest of it is kept, under a per-process random key.

IPv6 clients are grouped by /64, the block one subscriber usually gets; otherwise a
single host could walk its addresses to get fresh buckets. Both maps are bounded LRUs
with O(1) eviction: they are keyed by what an attacker sends.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from trax.domain.addresses import address_key as client_key
from trax.domain.errors import Unavailable
from trax.interfaces import Decision, RateLimiter

AUTH_THROTTLE_STATE = "trax_auth_throttle"
"""The app-state key of the app's one :class:`AuthThrottle`."""
MAX_BLOCKED_ADDRESSES = 65_536
"""Blocked addresses remembered at once; past it the oldest block is forgotten (that address gets one lookup)."""
MAX_GOOD_CREDENTIALS = 65_536
"""Credentials remembered as recently good; past it the least recently used is forgotten."""
GOOD_FOR_SECONDS = 600.0
"""How long a successful authentication lets that credential pass a blocked address."""


def address_key(host: str | None) -> str:
    """The bucket name for a client address (``trax.domain.addresses``: IPv6 by /64)."""
    return f"authfail:{client_key(host) if host else '-'}"


def _wait_for_one_token(decision: Decision, refill: float) -> float:
    """Seconds until the bucket behind ``decision`` holds a whole token again (0 if it does)."""
    if not decision.allowed:
        return decision.retry_after
    if decision.remaining >= 1:
        return 0.0
    # ``reset_after`` is (capacity - tokens) / refill; one token is (capacity - 1) / refill short of full
    return max(0.0, decision.reset_after - (decision.limit - 1) / refill)


class AuthThrottle:
    def __init__(
        self, limiter: RateLimiter, capacity: int, refill_per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limiter = limiter
        self._capacity = capacity
        self._refill = refill_per_second
        self._clock = clock
        self._blocked: OrderedDict[str, float] = OrderedDict()  # address key -> blocked until
        self._good: OrderedDict[bytes, float] = OrderedDict()  # credential digest -> good until
        self._digest_key = secrets.token_bytes(32)

    def _digest(self, credential: str) -> bytes:
        return hashlib.blake2b(
            credential.encode("utf-8", "surrogatepass"), key=self._digest_key, digest_size=16
        ).digest()

    def refused_for(self, address: str, credential: str | None) -> float:
        """Seconds the address must wait before this attempt may be checked; 0 lets it through."""
        until = self._blocked.get(address)
        if until is None:
            return 0.0
        now = self._clock()
        if now >= until:
            del self._blocked[address]
            return 0.0
        if credential is not None:
            good_until = self._good.get(self._digest(credential))
            if good_until is not None and now < good_until:
                return 0.0
        return until - now

    async def failed(self, address: str, credential: str | None) -> None:
        """Count a failed attempt; block the address here once its bucket is empty."""
        if credential is not None and self._good:
            self._good.pop(self._digest(credential), None)
        try:
            decision = await self._limiter.acquire(
                address, capacity=self._capacity, refill_per_second=self._refill, cost=1
            )
        except Unavailable:
            return  # the 401 stands; the limiter's outage is reported by the requests it fails
        wait = _wait_for_one_token(decision, self._refill)
        if wait > 0:
            self._blocked[address] = self._clock() + wait
            self._blocked.move_to_end(address)
            while len(self._blocked) > MAX_BLOCKED_ADDRESSES:
                self._blocked.popitem(last=False)

    def succeeded(self, credential: str) -> None:
        digest = self._digest(credential)
        self._good[digest] = self._clock() + GOOD_FOR_SECONDS
        self._good.move_to_end(digest)
        while len(self._good) > MAX_GOOD_CREDENTIALS:
            self._good.popitem(last=False)
