"""Redis rate limits and event bus for trax (the ``redis`` limiter and event bus backends)."""

from trax_redis.bus import RedisBusOptions, RedisEventBus
from trax_redis.limiter import RedisLimiterOptions, RedisRateLimiter

__all__ = ["RedisBusOptions", "RedisEventBus", "RedisLimiterOptions", "RedisRateLimiter"]
