"""One way to build a Redis client, so every backend here fails fast and reconnects the same way."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

REDIS_DOWN: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""What a missing, restarting or overloaded Redis raises."""


def make_client(url: SecretStr, timeout: float, **extra: Any) -> Redis:
    # One immediate retry: after a Redis restart the pooled connection is dead and the first
    # command on it fails; reconnecting once makes that invisible. More retries would only
    # stretch the time a caller waits while Redis is really down.
    return Redis.from_url(
        url.get_secret_value(),
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        client_name="trax",
        **extra,
    )
