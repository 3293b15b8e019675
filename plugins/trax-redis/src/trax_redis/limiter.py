"""``redis`` rate limiter: a token bucket per key, computed atomically inside Redis.

One Lua script reads the bucket, refills it for the time elapsed, takes the
cost if it can and writes it back, all as one atomic step on the server: one
round trip per request, no lost updates between processes. Time comes from
Redis's own ``TIME``, so hosts with skewed clocks still share one bucket
correctly. A bucket expires once it would be full again (a full bucket carries
no state), which keeps Redis's memory bounded by the keys active recently.
"""

from __future__ import annotations

import asyncio
import logging
import math

from pydantic import Field, SecretStr, field_validator
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from trax.domain.errors import Unavailable
from trax.interfaces import Decision
from trax.plugins.memory_limits import BucketOptions
from trax_redis.connection import REDIS_DOWN, check_url, close_client, make_client

log = logging.getLogger(__name__)

# KEYS[1]: the bucket. ARGV: capacity, refill per second, cost.
# Returns {allowed (0/1), tokens left as a string} (Lua numbers would be truncated to integers).
TOKEN_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
else
  local elapsed = now - at
  if elapsed > 0 then
    tokens = tokens + elapsed * rate
  end
  if tokens > capacity then
    tokens = capacity
  end
end
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens)}
"""


class RedisLimiterOptions(BucketOptions):
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    """Redis URL; set it through ``TRAX_LIMITS__OPTIONS__URL``, never in the file."""
    prefix: str = Field(default="trax:rl:", min_length=1)
    timeout: float = Field(default=1.0, gt=0)
    """Seconds one decision may take before the request is answered ``503 unavailable``."""
    retry_after: int = Field(default=1, ge=1)
    """Seconds suggested to clients (``Retry-After``) while Redis is unavailable."""
    max_connections: int = Field(default=50, ge=1)
    """Connections to Redis per process; requests beyond wait for one (within ``timeout``)."""

    @field_validator("url")
    @classmethod
    def _url_shape(cls, v: SecretStr) -> SecretStr:
        return check_url(v)


class RedisRateLimiter:
    def __init__(self, options: RedisLimiterOptions) -> None:
        self._o = options
        self._client: Redis | None = None
        self._script: AsyncScript | None = None

    def __repr__(self) -> str:
        return f"RedisRateLimiter(prefix={self._o.prefix!r})"

    def _unavailable(self, what: str) -> Unavailable:
        return Unavailable(f"Rate limits are unavailable: {what}.", retry_after=self._o.retry_after)

    async def open(self) -> None:
        if self._client is not None:
            return
        client = make_client(self._o.url, self._o.timeout, self._o.max_connections)
        try:
            async with asyncio.timeout(self._o.timeout * 3):
                await client.ping()
        except REDIS_DOWN as exc:
            await close_client(client)
            raise self._unavailable(f"cannot reach Redis ({exc.__class__.__name__})") from None
        self._client = client
        self._script = client.register_script(TOKEN_BUCKET_LUA)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._script = self._client, None, None
            await close_client(client)

    async def acquire(self, key: str, *, capacity: int, refill_per_second: float, cost: int = 1) -> Decision:
        script = self._script
        if script is None:
            raise self._unavailable("the limiter is not open")
        try:
            async with asyncio.timeout(self._o.timeout):
                allowed, left = await script(
                    keys=[self._o.prefix + key], args=[capacity, repr(float(refill_per_second)), cost]
                )
        except TimeoutError:
            raise self._unavailable(f"Redis did not answer within {self._o.timeout:g}s") from None
        except REDIS_DOWN as exc:
            log.warning("redis limiter call failed: %s", exc.__class__.__name__)
            raise self._unavailable(exc.__class__.__name__) from None
        tokens = float(left)
        ok = int(allowed) == 1
        return Decision(
            allowed=ok,
            limit=capacity,
            remaining=max(0, math.floor(tokens)),
            reset_after=max(0.0, (capacity - tokens) / refill_per_second),
            retry_after=0.0 if ok else max(0.0, (cost - tokens) / refill_per_second),
        )
