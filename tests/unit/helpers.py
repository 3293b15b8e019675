"""Services over a chosen storage, without a plugin manager (fast enough to build per example)."""

from __future__ import annotations

from pathlib import Path

from trax.domain.ids import IdGenerator
from trax.domain.pages import CursorCodec
from trax.interfaces import Storage
from trax.plugins.blob_stores import MemoryBlobStore
from trax.plugins.memory_bus import LocalEventBus
from trax.plugins.memory_storage import MemoryStorage
from trax.plugins.sqlite_storage import SqliteOptions, SqliteStorage
from trax.services import ServiceDeps, Services

SERVER_KEY = b"unit-test-server-key-" + b"k" * 32


def make_storage(kind: str, tmp: Path | None = None) -> Storage:
    if kind == "memory":
        return MemoryStorage()
    assert tmp is not None
    return SqliteStorage(SqliteOptions(path=tmp / "trax.db", synchronous="normal"))


def make_services(storage: Storage, *, server_key: bytes = SERVER_KEY) -> Services:
    return Services(
        ServiceDeps(
            storage=storage,
            bus=LocalEventBus(),
            blobs=MemoryBlobStore(),
            ids=IdGenerator(),
            server_key=server_key,
            cursors=CursorCodec(server_key),
        )
    )
