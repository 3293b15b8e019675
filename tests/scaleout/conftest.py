"""Real PostgreSQL and Redis for the scale-out tests, and trax deployments that share them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.tools import require_tool
from trax.ports import free_port
from trax.testing.servers import PostgresServer, RedisServer

SECRET = "scaleout-test-secret-" + "s" * 40


def _need_postgres() -> None:
    require_tool("pg_ctl", why="scale-out tests run against a real PostgreSQL")
    require_tool("initdb")


def _need_redis() -> None:
    require_tool("redis-server", why="scale-out tests run against a real Redis")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    _need_postgres()
    with PostgresServer() as pg:
        yield pg


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    _need_redis()
    with RedisServer() as r:
        yield r


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of the test's own, for tests that stop and restart it."""
    _need_postgres()
    with PostgresServer() as pg:
        yield pg


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    _need_redis()
    with RedisServer() as r:
        yield r


def scaleout_config(
    tmp: Path, pg: PostgresServer, redis: RedisServer, *, namespace: str | None = None, **sections: Any
) -> dict[str, Any]:
    """A deployment on postgres + redis; processes given the same ``namespace`` share all state.

    The DSN and URLs are in the file here only because these servers are throwaway and
    trust-authenticated; production passes them through TRAX_* variables.
    """
    ns = namespace or f"t_{uuid.uuid4().hex[:10]}"
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": free_port()},
        "storage": {"backend": "postgres", "options": {"dsn": pg.dsn, "schema": ns, "timeout": 2.0}},
        "limits": {
            "backend": "redis",
            "options": {"url": redis.url, "prefix": f"{ns}:rl:", "capacity": 1000, "refill_per_second": 1000},
        },
        "events": {"backend": "redis", "options": {"url": redis.url, "channel": f"{ns}:events"}},
        "blobs": {"backend": "filesystem", "options": {"root": str(tmp / "blobs")}},
        "public_api": {"write_enabled": True},
        "security": {"secret_key": SECRET},
        "platforms": {"loopback": {}},
    }
    config.update(sections)
    return config
