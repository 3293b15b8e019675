"""The WAL-index change token: one per commit, none without one, ``None`` whenever it cannot be trusted."""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from trax.plugins.sqlite_wal_index import HEADER_BYTES, WAL_INDEX_VERSION, WalIndex


@pytest.fixture
def wal_db(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A WAL-mode database held open by one connection, as the storage's reader holds it."""
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.execute("CREATE TABLE t (v INTEGER)")
    try:
        yield path, conn
    finally:
        conn.close()


def test_every_commit_gives_a_new_token_and_reads_give_none(wal_db: tuple[Path, sqlite3.Connection]) -> None:
    path, conn = wal_db
    index = WalIndex.open(path)
    assert index is not None
    try:
        seen = {index.token()}
        for i in range(20):
            before = index.token()
            conn.execute("SELECT count(*) FROM t").fetchone()
            assert index.token() == before  # a read publishes nothing
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            seen.add(index.token())
        assert len(seen) == 21 and None not in seen
    finally:
        index.close()


def test_a_commit_on_another_connection_changes_the_token(wal_db: tuple[Path, sqlite3.Connection]) -> None:
    path, _ = wal_db
    index = WalIndex.open(path)
    assert index is not None
    other = sqlite3.connect(path, isolation_level=None)
    try:
        before = index.token()
        other.execute("BEGIN")
        other.execute("INSERT INTO t VALUES (1)")
        assert index.token() == before  # not committed: not visible, not published
        other.execute("COMMIT")
        assert index.token() != before
    finally:
        other.close()
        index.close()


def test_a_rolled_back_transaction_publishes_nothing(wal_db: tuple[Path, sqlite3.Connection]) -> None:
    path, conn = wal_db
    index = WalIndex.open(path)
    assert index is not None
    try:
        before = index.token()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("ROLLBACK")
        assert index.token() == before
    finally:
        index.close()


def test_a_database_without_a_wal_index_has_none(tmp_path: Path) -> None:
    path = tmp_path / "rollback.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE t (v INTEGER)")  # rollback journal: no -shm file beside it
        assert WalIndex.open(path) is None
    finally:
        conn.close()
    assert WalIndex.open(tmp_path / "missing.db") is None


def header(*, version: int = WAL_INDEX_VERSION, is_init: int = 1) -> bytes:
    copy = struct.pack("=IIIBBH", version, 0, 7, is_init, 0, 4096).ljust(HEADER_BYTES, b"\0")
    return copy + copy


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "an empty file (a connection is initialising it)"),
        (header()[:50], "a short file"),
        (header(is_init=0), "a header nobody initialised"),
        (header(version=3007001), "a layout this module does not know"),
    ],
)
def test_an_untrustworthy_header_gives_none(tmp_path: Path, content: bytes, why: str) -> None:
    shm = tmp_path / "fake.db-shm"
    shm.write_bytes(content)
    index = WalIndex(os.open(shm, os.O_RDONLY))
    try:
        assert index.token() is None, why
    finally:
        index.close()
    assert WalIndex.open(tmp_path / "fake.db") is None, why


def test_a_well_formed_header_is_its_own_token_and_close_ends_it(tmp_path: Path) -> None:
    shm = tmp_path / "fake.db-shm"
    shm.write_bytes(header() + b"\0" * 1000)
    index = WalIndex.open(tmp_path / "fake.db")
    assert index is not None
    assert index.token() == header()
    index.close()
    index.close()  # closing twice is harmless
    assert index.token() is None and "open=False" in repr(index)


def test_without_positioned_reads_there_is_no_index(
    wal_db: tuple[Path, sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Platforms without ``os.pread`` (Windows) fall back to the pragma instead of failing every read."""
    path, _ = wal_db
    monkeypatch.delattr(os, "pread")
    assert WalIndex.open(path) is None
