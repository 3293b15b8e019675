"""``postgres`` storage: the Storage Protocol on PostgreSQL through an asyncpg pool.

The layout mirrors the built-in SQLite backend: one ``trax_entities`` table
(kind, account, id, parent, updated_at, the entity as JSON text from
:mod:`trax.codec`) and one ``trax_uniques`` table whose primary key enforces the
deployment-wide unique values. Every ``apply`` is one transaction, so a batch
lands whole or not at all, and is durable once it returns.

Every call is bounded by ``timeout`` (waiting for a pooled connection
included); a database that is down or too slow surfaces as
:class:`~trax.domain.errors.Unavailable` and the pool reconnects by itself on a
later call once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from trax.codec import decode_entity, encode_entity
from trax.domain.base import Entity
from trax.domain.errors import Conflict, NotFound, TraxError, Unavailable
from trax.domain.keys import ApiKey
from trax.interfaces import Delete, Insert, Write
from trax_postgres.migrations import migrate

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Entity)
T = TypeVar("T")

_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)

_NO_PARENT = "The object this one belongs to does not exist."
_ORPHANS = "Objects were added under one being deleted meanwhile; retry."


class PostgresOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    dsn: SecretStr = SecretStr("postgresql://127.0.0.1:5432/trax")
    """Connection string; set it through ``TRAX_STORAGE__OPTIONS__DSN``, never in the file."""
    db_schema: str = Field(default="trax", alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """Schema holding the tables (created if missing)."""
    min_size: int = Field(default=0, ge=0)
    """Connections kept open when idle. Above 0, asyncpg itself logs a traceback each time it
    fails to restore that floor while the database is down."""
    max_size: int = Field(default=10, ge=1)
    timeout: float = Field(default=5.0, gt=0)
    """Seconds any one storage call may take, waiting for a connection included."""
    connect_timeout: float = Field(default=2.0, gt=0)
    retry_after: int = Field(default=2, ge=1)
    """Seconds suggested to clients (``Retry-After``) while the database is unavailable."""
    statement_cache_size: int = Field(default=100, ge=0)
    """Prepared statements kept per connection; 0 behind a transaction-pooling proxy."""

    @field_validator("dsn")
    @classmethod
    def _dsn_shape(cls, v: SecretStr) -> SecretStr:
        # checked here so a bad DSN fails at start-up as a config error; messages never quote it
        try:
            parts = urlsplit(v.get_secret_value())
            port = parts.port
        except ValueError:
            raise ValueError("not a valid postgresql:// URL") from None
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("must start with postgresql://")
        if port is not None and not 0 < port < 65536:
            raise ValueError("port out of range")
        return v


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's per-release reset (a round trip that would double the cost of each call).

    Nothing here leaves session state behind: no SET outside a transaction, no LISTEN, no
    session advisory locks, and every transaction is closed by its ``async with``.
    """


def _ts(dt: datetime) -> str:
    # one spelling per instant, so compare-and-set on the text column is exact
    return (dt.astimezone(UTC) if dt.tzinfo is not None else dt).isoformat()


class PostgresStorage:
    def __init__(self, options: PostgresOptions) -> None:
        self._o = options
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresStorage(schema={self._o.db_schema!r})"

    # --- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        o = self._o
        try:
            async with asyncio.timeout(o.connect_timeout + o.timeout):
                conn = await asyncpg.connect(o.dsn.get_secret_value(), timeout=o.connect_timeout)
                try:
                    applied = await migrate(conn, o.db_schema)
                finally:
                    await conn.close()
                self._pool = await asyncpg.create_pool(
                    o.dsn.get_secret_value(),
                    min_size=min(o.min_size, o.max_size),
                    max_size=o.max_size,
                    timeout=o.connect_timeout,
                    command_timeout=o.timeout,
                    statement_cache_size=o.statement_cache_size,
                    server_settings={"search_path": o.db_schema, "application_name": "trax"},
                    reset=_no_reset,
                )
        except TraxError:
            raise
        except (TimeoutError, OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise Unavailable(
                f"Cannot open PostgreSQL storage: {exc.__class__.__name__}.", retry_after=o.retry_after
            ) from None
        if applied:
            log.info("postgres storage: applied migrations %s to schema %s", applied, o.db_schema)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self._o.timeout)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()

    async def _run(self, op: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        """Run ``op`` within the timeout, turning a database outage into ``Unavailable``."""
        pool = self._pool
        if pool is None:
            raise Unavailable("Storage is not open.", retry_after=self._o.retry_after)
        try:
            async with asyncio.timeout(self._o.timeout):
                return await op(pool)
        except TraxError:
            raise
        except TimeoutError:
            raise Unavailable(
                f"PostgreSQL did not answer within {self._o.timeout:g}s.", retry_after=self._o.retry_after
            ) from None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # the class name only: server messages can quote row values
            log.warning("postgres storage call failed: %s", exc.__class__.__name__)
            raise Unavailable(
                f"PostgreSQL is unavailable: {exc.__class__.__name__}.", retry_after=self._o.retry_after
            ) from None

    async def ping(self) -> None:
        await self._run(lambda p: p.fetchval("SELECT 1"))

    # --- reads -------------------------------------------------------------------

    async def get(self, kind: type[E], account_id: str, id: str) -> E | None:
        body = await self._run(
            lambda p: p.fetchval(
                "SELECT body FROM trax_entities WHERE kind=$1 AND account_id=$2 AND id=$3", kind.KIND, account_id, id
            )
        )
        return None if body is None else decode_entity(kind, body)

    async def list(
        self,
        kind: type[E],
        account_id: str,
        *,
        parent_id: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[E]:
        # '' sorts before every id in the C collation, so one statement serves the first page too
        if parent_id is None:
            sql = "SELECT body FROM trax_entities WHERE kind=$1 AND account_id=$2 AND id>$3 ORDER BY id LIMIT $4"
            args: tuple[Any, ...] = (kind.KIND, account_id, after or "", max(0, limit))
        else:
            sql = (
                "SELECT body FROM trax_entities WHERE kind=$1 AND account_id=$2 AND parent_id=$3 AND id>$4"
                " ORDER BY id LIMIT $5"
            )
            args = (kind.KIND, account_id, parent_id, after or "", max(0, limit))
        rows = await self._run(lambda p: p.fetch(sql, *args))
        return [decode_entity(kind, r[0]) for r in rows]

    async def find_unique(self, kind: type[E], index: str, value: str) -> E | None:
        body = await self._run(
            lambda p: p.fetchval(
                "SELECT e.body FROM trax_uniques u JOIN trax_entities e"
                " ON e.kind=u.kind AND e.account_id=u.account_id AND e.id=u.id"
                " WHERE u.idx=$1 AND u.value=$2 AND u.kind=$3",
                index,
                value,
                kind.KIND,
            )
        )
        return None if body is None else decode_entity(kind, body)

    # --- writes ------------------------------------------------------------------

    async def apply(self, writes: Sequence[Write]) -> None:
        ops = list(writes)
        if not ops:
            return

        wanted: set[tuple[str, str]] = set()
        deleted: dict[str, list[str]] = {}
        for w in ops:
            if isinstance(w, Delete):
                deleted.setdefault(w.account_id, []).append(w.id)
            elif w.entity.parent_id is not None:
                wanted.add((w.entity.account_id, w.entity.parent_id))
        parents = sorted(wanted)

        async def run(pool: asyncpg.Pool) -> None:
            # Two batches taking the same unique values in opposite orders can deadlock; the
            # database aborts one of them, which is safe to run again from the start.
            for attempt in range(3):
                try:
                    # READ COMMITTED whatever the server's default: _check_parents relies on each
                    # statement seeing what committed before it started
                    async with pool.acquire() as conn, conn.transaction(isolation="read_committed"):
                        for w in ops:
                            await _apply_one(conn, w)
                        await _check_parents(conn, parents, deleted)
                    return
                except _RETRYABLE:
                    if attempt == 2:
                        raise Conflict("Concurrent changes collided; retry.") from None

        await self._run(run)

    async def touch_keys(self, last_used: Mapping[str, datetime]) -> None:
        if not last_used:
            return
        wanted = dict(last_used)

        async def run(pool: asyncpg.Pool) -> None:
            async with pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    "SELECT account_id, id, body FROM trax_entities WHERE kind=$1 AND id = ANY($2::text[])"
                    " ORDER BY account_id, id FOR UPDATE",
                    ApiKey.KIND,
                    list(wanted),
                )
                # decoded in Python: JSON text may hold escapes (\u0000) that jsonb refuses
                updates = [
                    (
                        encode_entity(replace(decode_entity(ApiKey, r[2]), last_used_at=wanted[r[1]])).decode(),
                        r[0],
                        r[1],
                    )
                    for r in rows
                ]
                if updates:
                    await conn.executemany(
                        "UPDATE trax_entities SET body=$1 WHERE kind='api_key' AND account_id=$2 AND id=$3", updates
                    )

        await self._run(run)


async def _check_parents(
    conn: asyncpg.Connection, parents: Sequence[tuple[str, str]], deleted: Mapping[str, list[str]]
) -> None:
    """Refuse a batch whose end state lacks a written row's parent or keeps a deleted row's child.

    Race-free under READ COMMITTED across any number of processes:

    * A batch writing a child takes ``FOR KEY SHARE`` on the parent's row and holds
      it to commit. A batch deleting that parent needs the row's ``FOR UPDATE``
      lock, which conflicts, so the two are ordered by the lock. (``KEY SHARE``
      does not conflict with plain updates of the parent, e.g. going live.)
    * Child first: the delete's ``DELETE`` waits until the child's batch commits,
      and the children query below, a later statement with a newer snapshot,
      sees the child: the delete fails with ``Conflict`` and writes nothing.
    * Delete first: the child's lock waits for the delete's batch; once that
      commits the row is gone and ``FOR KEY SHARE`` returns nothing, so the child's
      batch fails with ``NotFound``. (If the delete rolls back, the child proceeds.)
    * Either batch finding the other already committed simply sees the result.
    Parents are locked in sorted order so two batches never wait on each other in a cycle.
    """
    for account_id, parent_id in parents:
        held = await conn.fetchval(
            "SELECT 1 FROM trax_entities WHERE account_id=$1 AND id=$2 LIMIT 1 FOR KEY SHARE", account_id, parent_id
        )
        if held is None:
            raise NotFound(_NO_PARENT)
    for account_id, ids in deleted.items():
        # a row re-inserted under the same id later in the batch still holds its children
        orphan = await conn.fetchval(
            "SELECT 1 FROM trax_entities c WHERE c.account_id=$1 AND c.parent_id = ANY($2::text[])"
            " AND NOT EXISTS (SELECT 1 FROM trax_entities p WHERE p.account_id=$1 AND p.id=c.parent_id) LIMIT 1",
            account_id,
            ids,
        )
        if orphan is not None:
            raise Conflict(_ORPHANS)


async def _apply_one(conn: asyncpg.Connection, w: Write) -> None:
    if isinstance(w, Delete):
        # the uniques rows go with it (ON DELETE CASCADE)
        gone = await conn.fetchval(
            "DELETE FROM trax_entities WHERE kind=$1 AND account_id=$2 AND id=$3 RETURNING 1",
            w.kind.KIND,
            w.account_id,
            w.id,
        )
        if gone is None:
            raise NotFound("No such resource.")
        return
    e = w.entity
    ident = (e.KIND, e.account_id, e.id)
    body = encode_entity(e).decode()
    if isinstance(w, Insert):
        done = await conn.fetchval(
            "INSERT INTO trax_entities VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING RETURNING 1",
            *ident,
            e.parent_id,
            _ts(e.updated_at),
            body,
        )
        if done is None:
            raise Conflict("An object with this id already exists.")
    else:
        if w.expect_updated_at is None:
            done = await conn.fetchval(
                "UPDATE trax_entities SET parent_id=$4, updated_at=$5, body=$6"
                " WHERE kind=$1 AND account_id=$2 AND id=$3 RETURNING 1",
                *ident,
                e.parent_id,
                _ts(e.updated_at),
                body,
            )
        else:
            done = await conn.fetchval(
                "UPDATE trax_entities SET parent_id=$4, updated_at=$5, body=$6"
                " WHERE kind=$1 AND account_id=$2 AND id=$3 AND updated_at=$7 RETURNING 1",
                *ident,
                e.parent_id,
                _ts(e.updated_at),
                body,
                _ts(w.expect_updated_at),
            )
        if done is None:
            exists = await conn.fetchval(
                "SELECT 1 FROM trax_entities WHERE kind=$1 AND account_id=$2 AND id=$3", *ident
            )
            if exists:
                raise Conflict("The object changed meanwhile; retry.")
            raise NotFound("No such resource.")
        await conn.execute("DELETE FROM trax_uniques WHERE kind=$1 AND account_id=$2 AND id=$3", *ident)
    for idx, value in e.unique_keys().items():
        taken = await conn.fetchval(
            "INSERT INTO trax_uniques VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING RETURNING 1", idx, value, *ident
        )
        if taken is None:
            raise Conflict(f"Duplicate value for {idx}.")
