"""``memory`` rate limiter: a token bucket per key in this process."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trax.interfaces import Decision, RateLimiter
from trax.plugin_api import Backend, hookimpl


class BucketOptions(BaseModel):
    """The deployment's default bucket; every limiter's options model extends this."""

    model_config = ConfigDict(extra="forbid")
    capacity: int = Field(default=120, ge=1)
    refill_per_second: float = Field(default=20.0, gt=0)


class MemoryLimiterOptions(BucketOptions):
    max_keys: int = Field(default=100_000, ge=1)
    """Buckets kept at most; full, idle buckets are dropped first (a full bucket carries no state)."""


class TokenBucket:
    """The bucket arithmetic, shared by the memory limiter and its tests.

    State per key is ``(tokens, last_refill)``. ``now`` is injectable so tests
    can drive time; there is no await inside ``take``, so no lock is needed on
    one event loop.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}
        self._max_keys = max_keys

    def take(self, key: str, capacity: int, rate: float, cost: int = 1) -> Decision:
        now = self._clock()
        tokens, last = self._state.get(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + max(0.0, now - last) * rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        if key not in self._state and len(self._state) >= self._max_keys:
            self._evict(now, rate, capacity)
        self._state[key] = (tokens, now)
        return Decision(
            allowed=allowed,
            limit=capacity,
            remaining=int(math.floor(tokens)),
            reset_after=(capacity - tokens) / rate,
            retry_after=0.0 if allowed else (cost - tokens) / rate,
        )

    def _evict(self, now: float, rate: float, capacity: int) -> None:
        full = [k for k, (t, last) in self._state.items() if t + (now - last) * rate >= capacity]
        for k in full or list(self._state)[: max(1, len(self._state) // 10)]:
            del self._state[k]


class MemoryRateLimiter:
    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def acquire(self, key: str, *, capacity: int, refill_per_second: float, cost: int = 1) -> Decision:
        return self.bucket.take(key, capacity, refill_per_second, cost)


def _factory(options: Any, runtime: Any) -> RateLimiter:
    return MemoryRateLimiter(TokenBucket(max_keys=options.max_keys))


@hookimpl
def trax_register_rate_limiters() -> list[Backend[RateLimiter]]:
    return [
        Backend(
            "memory",
            _factory,
            MemoryLimiterOptions,
            description="A token bucket per key in this process (one server process).",
        )
    ]
