"""``sqlite`` storage: one durable file (WAL, versioned migrations).

Reads run inline on the event loop through their own connection: a keyed
lookup takes tens of microseconds, less than a hop to a thread, and in WAL mode
readers never wait for the writer. Writes go to one writer thread, so a slow
fsync never stalls the loop, and each ``apply`` is one transaction that is
durable once it returns (``synchronous=FULL`` by default).

Reads are served from an exact cache (:class:`ReadCache`): the WAL-index
header (:mod:`trax.plugins.sqlite_wal_index`) changes whenever any connection
(our writer thread, a ``trax`` CLI in another process) commits, so each read
compares it with the version the cache was filled under and drops everything on
a difference; ``PRAGMA data_version`` stands in when the header cannot be read.
A cached answer is therefore always the answer a fresh query would give.
Cached entities are shared between callers, exactly as the memory backend
shares its rows: nothing may mutate them (services build changed copies with
``dataclasses.replace``).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field

from trax.codec import decode_entity, encode_entity
from trax.domain.base import Entity
from trax.domain.errors import Conflict, NotFound, Unavailable
from trax.domain.keys import ApiKey
from trax.interfaces import Delete, Insert, Storage, Write
from trax.plugin_api import Backend, hookimpl
from trax.plugins.sqlite_wal_index import WalIndex

E = TypeVar("E", bound=Entity)

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE entities (
            kind TEXT NOT NULL,
            account_id TEXT NOT NULL,
            id TEXT NOT NULL,
            parent_id TEXT,
            updated_at TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (kind, account_id, id)
        ) WITHOUT ROWID;
        CREATE INDEX entities_by_parent ON entities (kind, account_id, parent_id, id);
        CREATE TABLE uniques (
            idx TEXT NOT NULL,
            value TEXT NOT NULL,
            kind TEXT NOT NULL,
            account_id TEXT NOT NULL,
            id TEXT NOT NULL,
            PRIMARY KEY (idx, value)
        ) WITHOUT ROWID;
        CREATE INDEX uniques_by_owner ON uniques (kind, account_id, id);
        """,
    ),
    (
        2,
        # touch_keys finds API keys by id alone, across accounts: without this it scans every key.
        """
        CREATE INDEX entities_by_kind_id ON entities (kind, id);
        """,
    ),
    (
        3,
        # apply's parent/child rule: a parent found by id whatever its kind, a deleted row's children.
        # The second is partial on a term list() never states, so list() keeps entities_by_parent.
        """
        CREATE INDEX entities_by_account_id ON entities (account_id, id);
        CREATE INDEX entities_children ON entities (account_id, parent_id) WHERE parent_id <> '';
        """,
    ),
)


class SqliteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Path("var/trax.db")
    synchronous: Literal["full", "normal"] = "full"
    """``full`` survives power loss; ``normal`` survives a killed process only."""
    busy_timeout_ms: int = Field(default=5000, ge=0)
    read_cache_entities: int = Field(default=20_000, ge=0)
    """How many entities the exact read cache holds (a list page counts its rows); 0 turns it off."""


_MISSING = object()

_NO_PARENT = "The object this one belongs to does not exist."
_ORPHANS = "Objects were added under one being deleted meanwhile; retry."


class ReadCache:
    """Read results valid for one change token (see ``SqliteStorage._cached``), least recently used evicted.

    ``budget`` bounds the number of entities held: a single entity (or a miss)
    weighs 1, a list weighs its length plus one.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.version: Hashable = None
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._weight = 0
        self.hits = self.misses = self.clears = 0

    def __len__(self) -> int:
        return len(self._entries)

    def validate(self, version: Hashable) -> None:
        """Drop everything unless ``version`` is the one the entries were read under."""
        if version != self.version:
            if self._entries:
                self._entries.clear()
                self.clears += 1
            self._weight = 0
            self.version = version

    def get(self, key: Hashable) -> Any:
        hit = self._entries.get(key)
        if hit is None:
            self.misses += 1
            return _MISSING
        self._entries.move_to_end(key)
        self.hits += 1
        return hit[0]

    def put(self, key: Hashable, value: Any, weight: int) -> None:
        if weight > self.budget:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._weight -= old[1]
        self._entries[key] = (value, weight)
        self._weight += weight
        while self._weight > self.budget:
            _, (_, w) = self._entries.popitem(last=False)
            self._weight -= w


def _ts(dt: datetime) -> str:
    return dt.isoformat()


class SqliteStorage:
    def __init__(self, options: SqliteOptions) -> None:
        self._opts = options
        self._reader: sqlite3.Connection | None = None
        self._version_cursor: sqlite3.Cursor | None = None
        self._wal_index: WalIndex | None = None
        self._writer: sqlite3.Connection | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._write_lock = threading.Lock()
        self.cache = ReadCache(options.read_cache_entities) if options.read_cache_entities else None

    def __repr__(self) -> str:
        return f"SqliteStorage(path={str(self._opts.path)!r})"

    # --- lifecycle ----------------------------------------------------------

    def _connect(self, *, check_same_thread: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._opts.path,
            isolation_level=None,
            check_same_thread=check_same_thread,
            timeout=self._opts.busy_timeout_ms / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout={self._opts.busy_timeout_ms}")
        conn.execute(f"PRAGMA synchronous={self._opts.synchronous.upper()}")
        return conn

    def _open_sync(self) -> None:
        # Two processes creating the same new file at once can get SQLITE_BUSY without the busy
        # handler ever being called (switching a fresh file to WAL, recovering the WAL index):
        # such a "locked" is retried from scratch for as long as the busy timeout allows.
        deadline = time.monotonic() + self._opts.busy_timeout_ms / 1000
        while True:
            try:
                self._open_once()
                return
            except sqlite3.OperationalError as exc:
                self._close_sync()
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02 + random.random() * 0.03)

    def _open_once(self) -> None:
        self._opts.path.parent.mkdir(parents=True, exist_ok=True)
        w = self._connect(check_same_thread=False)
        self._writer = w  # from here on close() releases it, whatever fails next
        mode = w.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise Unavailable("SQLite could not enable WAL mode for the storage file.")
        self._migrate(w)
        self._reader = self._connect(check_same_thread=False)
        self._version_cursor = self._reader.cursor()
        # the reader's first read attaches it to the WAL index, which it then keeps alive for ours
        self._version_cursor.execute("PRAGMA data_version").fetchone()
        self._wal_index = WalIndex.open(self._opts.path)
        if self.cache is not None:
            # data_version is per connection, and the file may have changed while closed:
            # nothing read before says anything about a new reader's view
            self.cache = ReadCache(self.cache.budget)

    @staticmethod
    def _migrate(conn: sqlite3.Connection, migrations: Sequence[tuple[int, str]] = MIGRATIONS) -> None:
        """Apply every migration the file lacks, each in its own transaction.

        The applied versions are read inside the write transaction, so two
        processes opening the same old file never both run a migration.
        """
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        newest = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        known = max(v for v, _ in MIGRATIONS)
        if newest is not None and newest > known:
            # a newer trax changed the schema; writing with this one could corrupt its data
            raise Unavailable(f"The storage file is at schema version {newest}; this trax knows up to {known}.")
        for version, sql in migrations:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("SELECT 1 FROM schema_migrations WHERE version=?", (version,)).fetchone():
                    conn.execute("COMMIT")
                    continue
                for stmt in filter(str.strip, sql.split(";")):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ','now'))", (version,)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trax-sqlite-writer")
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._open_sync)
        except Unavailable:
            await self.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise Unavailable(f"Cannot open the SQLite storage file {str(self._opts.path)!r}: {exc}.") from None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.get_running_loop().run_in_executor(pool, self._close_sync)
            pool.shutdown(wait=True)

    def _close_sync(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None
        self._version_cursor = None
        if self._wal_index is not None:
            self._wal_index.close()
            self._wal_index = None

    async def ping(self) -> None:
        self._read(lambda c: c.execute("SELECT 1").fetchone())

    # --- reads (inline) ---------------------------------------------------------

    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._reader is None:
            raise Unavailable("Storage is not open.")
        try:
            return fn(self._reader)
        except sqlite3.Error as exc:
            raise Unavailable(f"Storage read failed: {exc.__class__.__name__}.") from None

    def _cached(self, key: Hashable) -> tuple[ReadCache | None, Any]:
        """The cache (checked against the current change token) and its entry for ``key``.

        The version is read before the query that may fill the entry, so an
        entry can only be newer than its version, never older; a commit in
        between changes the version and the next read drops the entry.
        """
        cache = self.cache
        if cache is None:
            return None, _MISSING
        cur = self._version_cursor
        if cur is None:
            raise Unavailable("Storage is not open.")
        wal = self._wal_index
        version: Hashable = wal.token() if wal is not None else None
        if version is None:
            try:
                # a read transaction of its own (two fcntl locks and a step): exact, but 10x the pread
                version = cur.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as exc:
                raise Unavailable(f"Storage read failed: {exc.__class__.__name__}.") from None
        cache.validate(version)
        return cache, cache.get(key)

    async def get(self, kind: type[E], account_id: str, id: str) -> E | None:
        key = ("get", kind.KIND, account_id, id)
        cache, hit = self._cached(key)
        if hit is not _MISSING:
            return cast("E | None", hit)
        row = self._read(
            lambda c: c.execute(
                "SELECT body FROM entities WHERE kind=? AND account_id=? AND id=?", (kind.KIND, account_id, id)
            ).fetchone()
        )
        entity = decode_entity(kind, row[0]) if row else None
        if cache is not None:
            cache.put(key, entity, 1)
        return entity

    async def list(
        self,
        kind: type[E],
        account_id: str,
        *,
        parent_id: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[E]:
        key = ("list", kind.KIND, account_id, parent_id, after, limit)
        cache, hit = self._cached(key)
        if hit is not _MISSING:
            return list(hit)  # callers may change their list, never the shared one
        sql = "SELECT body FROM entities WHERE kind=? AND account_id=?"
        args: list[Any] = [kind.KIND, account_id]
        if parent_id is not None:
            sql += " AND parent_id=?"
            args.append(parent_id)
        if after:
            sql += " AND id>?"
            args.append(after)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        rows = self._read(lambda c: c.execute(sql, args).fetchall())
        out = [decode_entity(kind, r[0]) for r in rows]
        if cache is not None:
            cache.put(key, tuple(out), len(out) + 1)
        return out

    async def find_unique(self, kind: type[E], index: str, value: str) -> E | None:
        key = ("unique", kind.KIND, index, value)
        cache, hit = self._cached(key)
        if hit is not _MISSING:
            return cast("E | None", hit)
        row = self._read(
            lambda c: c.execute(
                "SELECT e.body FROM uniques u JOIN entities e"
                " ON e.kind=u.kind AND e.account_id=u.account_id AND e.id=u.id"
                " WHERE u.idx=? AND u.value=? AND u.kind=?",
                (index, value, kind.KIND),
            ).fetchone()
        )
        if row is None:
            return None  # not cached: guessed values (unknown API keys) would only evict real entries
        entity = decode_entity(kind, row[0])
        if cache is not None:
            cache.put(key, entity, 1)
        return entity

    # --- writes (writer thread) -------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        if self._pool is None or self._writer is None:
            raise Unavailable("Storage is not open.")
        writer = self._writer

        def run() -> None:
            with self._write_lock:
                writer.execute("BEGIN IMMEDIATE")
                try:
                    fn(writer)
                except BaseException:
                    writer.execute("ROLLBACK")
                    raise
                writer.execute("COMMIT")

        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, run)
        except sqlite3.IntegrityError:
            raise Conflict("A unique value is already taken.") from None
        except sqlite3.Error as exc:
            raise Unavailable(f"Storage write failed: {exc.__class__.__name__}.") from None

    async def apply(self, writes: Sequence[Write]) -> None:
        ops = list(writes)
        await self._write(lambda c: self._apply_sync(c, ops))

    @staticmethod
    def _apply_sync(c: sqlite3.Connection, writes: Sequence[Write]) -> None:
        parents: set[tuple[str, str]] = set()
        deleted: set[tuple[str, str]] = set()
        for w in writes:
            if isinstance(w, Delete):
                cur = c.execute(
                    "DELETE FROM entities WHERE kind=? AND account_id=? AND id=?", (w.kind.KIND, w.account_id, w.id)
                )
                if cur.rowcount == 0:
                    raise NotFound("No such resource.")
                c.execute(
                    "DELETE FROM uniques WHERE kind=? AND account_id=? AND id=?", (w.kind.KIND, w.account_id, w.id)
                )
                deleted.add((w.account_id, w.id))
                continue
            e = w.entity
            ident = (e.KIND, e.account_id, e.id)
            if e.parent_id is not None:
                parents.add((e.account_id, e.parent_id))
            if isinstance(w, Insert):
                try:
                    c.execute(
                        "INSERT INTO entities VALUES (?,?,?,?,?,?)",
                        (*ident, e.parent_id, _ts(e.updated_at), encode_entity(e).decode()),
                    )
                except sqlite3.IntegrityError:
                    raise Conflict("An object with this id already exists.") from None
            else:
                sql = "UPDATE entities SET parent_id=?, updated_at=?, body=? WHERE kind=? AND account_id=? AND id=?"
                args: list[Any] = [e.parent_id, _ts(e.updated_at), encode_entity(e).decode(), *ident]
                if w.expect_updated_at is not None:
                    sql += " AND updated_at=?"
                    args.append(_ts(w.expect_updated_at))
                if c.execute(sql, args).rowcount == 0:
                    exists = c.execute(
                        "SELECT 1 FROM entities WHERE kind=? AND account_id=? AND id=?", ident
                    ).fetchone()
                    if exists:
                        raise Conflict("The object changed meanwhile; retry.")
                    raise NotFound("No such resource.")
                c.execute("DELETE FROM uniques WHERE kind=? AND account_id=? AND id=?", ident)
            for idx, value in e.unique_keys().items():
                try:
                    c.execute("INSERT INTO uniques VALUES (?,?,?,?,?)", (idx, value, *ident))
                except sqlite3.IntegrityError:
                    raise Conflict(f"Duplicate value for {idx}.") from None
        _check_parents(c, parents, deleted)

    async def touch_keys(self, last_used: Mapping[str, datetime]) -> None:
        items = [(_ts(ts), ApiKey.KIND, key_id) for key_id, ts in last_used.items()]

        def run(c: sqlite3.Connection) -> None:
            # json_set keeps this one statement per key without decoding the body in Python
            c.executemany(
                "UPDATE entities SET body=json_set(body, '$.last_used_at', ?) WHERE kind=? AND id=?",
                [(ts.replace("+00:00", "Z"), k, i) for ts, k, i in items],
            )

        await self._write(run)


def _check_parents(c: sqlite3.Connection, parents: set[tuple[str, str]], deleted: set[tuple[str, str]]) -> None:
    """Refuse a batch whose end state lacks a written row's parent or keeps a deleted row's child.

    Runs inside the ``BEGIN IMMEDIATE`` transaction, which holds the file's one
    write lock from its first statement: no other connection (thread or process)
    can commit between these reads and the ``COMMIT``, so they see the state the
    batch commits into.
    """
    for account_id, parent_id in parents:
        if c.execute("SELECT 1 FROM entities WHERE account_id=? AND id=?", (account_id, parent_id)).fetchone() is None:
            raise NotFound(_NO_PARENT)
    for account_id, id in deleted:
        # a row re-inserted under the same id later in the batch still holds its children
        orphan = c.execute(
            "SELECT 1 FROM entities WHERE account_id=?1 AND parent_id=?2 AND parent_id <> ''"
            " AND NOT EXISTS (SELECT 1 FROM entities WHERE account_id=?1 AND id=?2) LIMIT 1",
            (account_id, id),
        ).fetchone()
        if orphan is not None:
            raise Conflict(_ORPHANS)


def _factory(options: Any, runtime: Any) -> Storage:
    return SqliteStorage(options)


@hookimpl
def trax_register_storage() -> list[Backend[Storage]]:
    return [
        Backend(
            "sqlite",
            _factory,
            SqliteOptions,
            description="One durable SQLite file (WAL); a single server process.",
        )
    ]
