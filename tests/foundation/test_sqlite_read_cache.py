"""The SQLite storage's exact read cache: hits skip the query, any commit anywhere drops it."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from trax.domain.keys import ApiKey
from trax.domain.studios import Studio
from trax.interfaces import Insert, Update
from trax.plugins.sqlite_storage import SqliteOptions, SqliteStorage
from trax.plugins.sqlite_wal_index import WalIndex

ACCT = "acct_01JABCDEFGHJKMNPQRSTVWXYZ0"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def studio(i: int, name: str | None = None) -> Studio:
    return Studio(id=f"studio_{i:026d}", account_id=ACCT, created_at=T0, updated_at=T0, name=name or f"Studio {i}")


@pytest.fixture(params=["wal-index", "pragma"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    """Both ways of telling a commit: the WAL-index header, and ``PRAGMA data_version`` when it is unreadable."""
    if request.param == "pragma":
        request.getfixturevalue("monkeypatch").setattr(WalIndex, "open", classmethod(lambda cls, path: None))
    s = SqliteStorage(SqliteOptions(path=tmp_path / "t.db", synchronous="normal"))
    await s.open()
    assert (s._wal_index is None) == (request.param == "pragma")
    try:
        await s.apply([Insert(studio(i)) for i in range(5)])
        yield s
    finally:
        await s.close()


def count_statements(store: SqliteStorage) -> list[str]:
    seen: list[str] = []
    assert store._reader is not None
    store._reader.set_trace_callback(seen.append)
    return seen


@pytest.mark.anyio
async def test_a_repeated_read_runs_only_the_version_check(store: SqliteStorage) -> None:
    first = await store.list(Studio, ACCT, limit=10)
    got = await store.get(Studio, ACCT, studio(1).id)
    seen = count_statements(store)
    assert await store.list(Studio, ACCT, limit=10) == first
    assert await store.get(Studio, ACCT, studio(1).id) == got
    # the WAL-index header is read beside SQLite, not through it: no statement at all
    assert seen == ([] if store._wal_index is not None else ["PRAGMA data_version"] * 2)


@pytest.mark.anyio
async def test_writes_through_apply_are_seen_by_the_next_read(store: SqliteStorage) -> None:
    before = await store.get(Studio, ACCT, studio(1).id)
    listed = await store.list(Studio, ACCT, limit=10)
    assert before is not None and len(listed) == 5
    await store.apply([Update(replace(before, name="renamed")), Insert(studio(9))])
    after = await store.get(Studio, ACCT, studio(1).id)
    assert after is not None and after.name == "renamed"
    relisted = await store.list(Studio, ACCT, limit=10)
    assert [s.id for s in relisted][-1] == studio(9).id and relisted[1].name == "renamed"


@pytest.mark.anyio
async def test_a_commit_by_another_connection_drops_the_cache(store: SqliteStorage, tmp_path: Path) -> None:
    """Another process (``trax keys revoke``) writes through its own connection: data_version sees it."""
    key = ApiKey(
        id="key_01JABCDEFGHJKMNPQRSTVWXYZ0",
        account_id=ACCT,
        created_at=T0,
        updated_at=T0,
        name="k",
        prefix="sk_live_abc",
        key_hash="h" * 64,
        scopes=("studios:read",),
    )
    await store.apply([Insert(key)])
    assert (await store.find_unique(ApiKey, "api_key.hash", "h" * 64)) == key
    assert (await store.get(Studio, ACCT, studio(2).id)) is not None
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    try:
        other.execute(
            "UPDATE entities SET body=json_set(body, '$.revoked_at', '2026-01-02T00:00:00Z') WHERE kind=? AND id=?",
            (ApiKey.KIND, key.id),
        )
        other.execute("DELETE FROM entities WHERE kind=? AND id=?", (Studio.KIND, studio(2).id))
    finally:
        other.close()
    found = await store.find_unique(ApiKey, "api_key.hash", "h" * 64)
    assert found is not None and found.revoked_at is not None
    assert await store.get(Studio, ACCT, studio(2).id) is None
    assert studio(2).id not in [s.id for s in await store.list(Studio, ACCT, limit=10)]


RENAME_IN_ANOTHER_PROCESS = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("UPDATE entities SET body=json_set(body, '$.name', 'renamed elsewhere') WHERE kind=? AND id=?",
           (sys.argv[2], sys.argv[3]))
db.close()
"""


@pytest.mark.anyio
async def test_a_commit_by_another_process_drops_the_cache(store: SqliteStorage, tmp_path: Path) -> None:
    """The header lives in shared memory, so a commit by another process changes what this one reads."""
    assert (await store.get(Studio, ACCT, studio(3).id)) == studio(3)
    with anyio.fail_after(60):
        await anyio.run_process(
            [sys.executable, "-c", RENAME_IN_ANOTHER_PROCESS, str(tmp_path / "t.db"), Studio.KIND, studio(3).id]
        )
    found = await store.get(Studio, ACCT, studio(3).id)
    assert found is not None and found.name == "renamed elsewhere"


@pytest.mark.anyio
async def test_a_checkpoint_and_wal_restart_never_hide_a_commit(store: SqliteStorage, tmp_path: Path) -> None:
    """After a truncating checkpoint the WAL starts again from frame 0: the next commit must still show."""
    assert (await store.get(Studio, ACCT, studio(4).id)) is not None
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    try:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert (await store.get(Studio, ACCT, studio(4).id)) is not None  # nothing changed: still there
        other.execute("DELETE FROM entities WHERE kind=? AND id=?", (Studio.KIND, studio(4).id))
    finally:
        other.close()
    assert await store.get(Studio, ACCT, studio(4).id) is None


@pytest.mark.anyio
async def test_callers_get_their_own_list(store: SqliteStorage) -> None:
    mine = await store.list(Studio, ACCT, limit=10)
    mine.clear()
    assert len(await store.list(Studio, ACCT, limit=10)) == 5


@pytest.mark.anyio
async def test_unknown_unique_values_are_not_cached(store: SqliteStorage) -> None:
    for i in range(50):
        assert await store.find_unique(ApiKey, "api_key.hash", f"guess-{i}") is None
    assert store.cache is not None and len(store.cache) == 0


@pytest.mark.anyio
async def test_the_budget_bounds_what_is_held(tmp_path: Path) -> None:
    s = SqliteStorage(SqliteOptions(path=tmp_path / "b.db", synchronous="normal", read_cache_entities=8))
    await s.open()
    try:
        await s.apply([Insert(studio(i)) for i in range(20)])
        assert len(await s.list(Studio, ACCT, limit=20)) == 20  # weighs 21 > 8: not kept
        for i in range(20):
            assert await s.get(Studio, ACCT, studio(i).id) is not None
        assert s.cache is not None and len(s.cache) == 8
        seen = count_statements(s)
        await s.get(Studio, ACCT, studio(19).id)  # recently used: still held
        await s.get(Studio, ACCT, studio(0).id)  # evicted first: read again
        assert len([q for q in seen if q.startswith("SELECT")]) == 1
    finally:
        await s.close()


@pytest.mark.anyio
async def test_zero_turns_the_cache_off(tmp_path: Path) -> None:
    s = SqliteStorage(SqliteOptions(path=tmp_path / "o.db", synchronous="normal", read_cache_entities=0))
    await s.open()
    try:
        await s.apply([Insert(studio(1))])
        seen = count_statements(s)
        for _ in range(3):
            assert await s.get(Studio, ACCT, studio(1).id) is not None
        assert len([q for q in seen if q.startswith("SELECT")]) == 3 and s.cache is None
    finally:
        await s.close()


@pytest.mark.anyio
async def test_reopening_starts_an_empty_cache(tmp_path: Path) -> None:
    """data_version counts per connection, so a new reader's numbers cannot vouch for old entries."""
    s = SqliteStorage(SqliteOptions(path=tmp_path / "r.db", synchronous="normal"))
    await s.open()
    await s.apply([Insert(studio(1))])
    assert await s.get(Studio, ACCT, studio(1).id) is not None
    await s.close()
    other = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    other.execute("DELETE FROM entities")
    other.close()
    await s.open()
    try:
        assert s.cache is not None and len(s.cache) == 0 and s.cache.version is None
        assert await s.get(Studio, ACCT, studio(1).id) is None
    finally:
        await s.close()
