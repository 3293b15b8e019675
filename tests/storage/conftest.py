from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tools import require_tool
from trax.testing.servers import PostgresServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole session; each test takes its own schema."""
    require_tool("pg_ctl", why="the postgres storage backend is tested against a real server")
    require_tool("initdb")
    with PostgresServer() as pg:
        yield pg
