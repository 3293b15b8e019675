"""``memory`` rate limiter: a token bucket per key in this process."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
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
    """Buckets kept at most; past it the least recently used bucket is dropped (one step, no scan)."""


# Float arithmetic may leave a bucket a hair under a whole token at the very
# moment the maths says it is whole; without this slack a client that waits
# exactly ``retry_after`` would be refused once more.
_EPSILON = 1e-9


class TokenBucket:
    """The bucket arithmetic, shared by the memory limiter and its tests.

    State per key is ``(tokens, last_refill, capacity, rate)``. ``clock`` is
    injectable so tests can drive time; there is no await inside ``take``, so
    no lock is needed on one event loop.

    ``max_keys`` is a hard cap, kept by a least-recently-used order: every
    ``take`` moves its key to the end, and a new key past the cap drops the
    first one. Both are O(1), whatever the number of keys: keys are attacker
    input (client addresses, key ids), so an eviction that walked the buckets
    would let a flood of fresh keys make every request pay for all of them.
    The ``capacity + rate * T`` bound therefore holds for a key as long as
    fewer than ``max_keys`` other keys are used between two of its requests;
    a key forgotten after that starts again from a full bucket. The bucket
    forgotten is the one idle longest, the most likely to be full anyway.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._state: OrderedDict[str, tuple[float, float, int, float]] = OrderedDict()
        self._max_keys = max_keys

    def __len__(self) -> int:
        return len(self._state)

    def take(self, key: str, capacity: int, rate: float, cost: int = 1) -> Decision:
        now = self._clock()
        state = self._state.get(key)
        stamp = now
        if state is None:
            tokens = float(capacity)
            while len(self._state) >= self._max_keys:
                self._state.popitem(last=False)
        else:
            self._state.move_to_end(key)
            tokens, last = state[0], state[1]
            tokens = min(float(capacity), tokens + max(0.0, now - last) * rate)
            stamp = max(now, last)  # a clock that steps back must not earn the same interval twice
        allowed = tokens + _EPSILON >= cost
        if allowed:
            tokens -= cost
        self._state[key] = (tokens, stamp, capacity, rate)
        return Decision(
            allowed=allowed,
            limit=capacity,
            remaining=max(0, math.floor(tokens + _EPSILON)),
            reset_after=max(0.0, (capacity - tokens) / rate),
            retry_after=0.0 if allowed else max(0.0, (cost - tokens) / rate),
        )


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
