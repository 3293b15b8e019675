"""Registers the ``redis`` rate limiter and event bus (entry point group ``trax``)."""

from __future__ import annotations

from typing import Any

from trax.interfaces import EventBus, RateLimiter
from trax.plugin_api import Backend, hookimpl
from trax_redis.bus import RedisBusOptions, RedisEventBus
from trax_redis.limiter import RedisLimiterOptions, RedisRateLimiter


def _limiter(options: Any, runtime: Any) -> RateLimiter:
    return RedisRateLimiter(options)


def _bus(options: Any, runtime: Any) -> EventBus:
    return RedisEventBus(options)


@hookimpl
def trax_register_rate_limiters() -> list[Backend[RateLimiter]]:
    return [
        Backend(
            "redis",
            _limiter,
            RedisLimiterOptions,
            description="A token bucket per key in Redis, shared by every server process.",
        )
    ]


@hookimpl
def trax_register_event_buses() -> list[Backend[EventBus]]:
    return [
        Backend(
            "redis",
            _bus,
            RedisBusOptions,
            description="Domain events fanned out to every server process through Redis pub/sub.",
        )
    ]
