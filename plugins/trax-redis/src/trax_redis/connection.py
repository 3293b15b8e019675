"""One way to build a Redis client, so every backend here fails fast and reconnects the same way."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import SecretStr
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

REDIS_DOWN: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
"""What a missing, restarting or overloaded Redis raises."""


def make_client(url: SecretStr, timeout: float, max_connections: int) -> Redis:
    """A client whose callers queue for one of ``max_connections`` connections (at most ``timeout``)."""
    pool = BlockingConnectionPool.from_url(
        url.get_secret_value(),
        max_connections=max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        # One immediate retry: after a Redis restart the pooled connection is dead and the first
        # command on it fails; reconnecting once hides that. More retries would only stretch the
        # time a caller waits while Redis is really down.
        retry=Retry(NoBackoff(), 1),
        client_name="trax",
    )
    return Redis(connection_pool=pool)


async def close_client(client: Redis) -> None:
    await client.aclose()
    await client.connection_pool.aclose()


def check_url(url: SecretStr) -> SecretStr:
    """Validate a Redis URL for an options model; the error never quotes it (it may hold a password)."""
    try:
        parts = urlsplit(url.get_secret_value())
        port = parts.port
    except ValueError:
        raise ValueError("not a valid redis:// URL") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must start with redis://, rediss:// or unix://")
    if port is not None and not 0 < port < 65536:
        raise ValueError("port out of range")
    return url
