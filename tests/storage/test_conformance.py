"""The shipped conformance suite, run against every first-party storage backend."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from trax.interfaces import Storage
from trax.plugins.memory_storage import MemoryStorage
from trax.plugins.sqlite_storage import SqliteOptions, SqliteStorage
from trax.testing.servers import PostgresServer
from trax.testing.storage import StorageConformance


class TestMemoryStorage(StorageConformance):
    durable = False

    @pytest.fixture
    def make_storage(self) -> Callable[[], Storage]:
        store = MemoryStorage()
        return lambda: store


class TestSqliteStorage(StorageConformance):
    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> Callable[[], Storage]:
        return lambda: SqliteStorage(SqliteOptions(path=tmp_path / "trax.db"))


class TestPostgresStorage(StorageConformance):
    @pytest.fixture
    def make_storage(self, postgres_server: PostgresServer) -> Callable[[], Storage]:
        from trax_postgres import PostgresOptions, PostgresStorage

        schema = f"t_{uuid.uuid4().hex[:12]}"
        return lambda: PostgresStorage(PostgresOptions(dsn=postgres_server.dsn, schema=schema))
