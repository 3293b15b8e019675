"""Versioned schema migrations, applied in order, each once, under an advisory lock.

Columns that hold ids use the ``C`` collation so ``ORDER BY id`` is byte order,
the order of the time-ordered ids (a locale collation would sort ``_`` and case
differently and break keyset paging).
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE trax_entities (
            kind text COLLATE "C" NOT NULL,
            account_id text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            parent_id text COLLATE "C",
            updated_at text NOT NULL,
            body text NOT NULL,
            PRIMARY KEY (kind, account_id, id)
        );
        CREATE INDEX trax_entities_by_parent ON trax_entities (kind, account_id, parent_id, id);
        CREATE INDEX trax_entities_by_kind_id ON trax_entities (kind, id);
        CREATE TABLE trax_uniques (
            idx text COLLATE "C" NOT NULL,
            value text COLLATE "C" NOT NULL,
            kind text COLLATE "C" NOT NULL,
            account_id text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            PRIMARY KEY (idx, value),
            FOREIGN KEY (kind, account_id, id) REFERENCES trax_entities (kind, account_id, id) ON DELETE CASCADE
        );
        CREATE INDEX trax_uniques_by_owner ON trax_uniques (kind, account_id, id);
        """,
    ),
    (
        2,
        # apply's parent/child rule: a parent found by id whatever its kind, a deleted row's children
        """
        CREATE INDEX trax_entities_by_account_id ON trax_entities (account_id, id);
        CREATE INDEX trax_entities_children ON trax_entities (account_id, parent_id) WHERE parent_id IS NOT NULL;
        """,
    ),
)

# Any constant works; it only has to be the same in every trax process.
_LOCK_KEY = 0x7472_6178_6D69_67  # "traxmig"


async def migrate(conn: asyncpg.Connection, schema: str) -> list[int]:
    """Bring ``schema`` up to date; returns the versions applied now (none when already current)."""
    applied: list[int] = []
    async with conn.transaction():
        # Two processes starting together: the second waits here, then finds nothing to do.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".trax_migrations'
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in await conn.fetch(f'SELECT version FROM "{schema}".trax_migrations')}
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO trax_migrations (version) VALUES ($1)", version)
            applied.append(version)
    return applied
