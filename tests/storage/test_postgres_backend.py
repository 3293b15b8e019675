"""What the conformance suite cannot see about the postgres backend: migrations, collation, outages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from trax_postgres import PostgresOptions, PostgresStorage
from trax_postgres.migrations import MIGRATIONS

from tests.support.tools import require, require_tool
from trax.domain.base import utcnow
from trax.domain.errors import Unavailable
from trax.domain.studios import Studio
from trax.interfaces import Insert
from trax.ports import free_port
from trax.testing.servers import PostgresServer

pytestmark = pytest.mark.anyio


def _storage(dsn: str, schema: str | None = None, **opts: object) -> PostgresStorage:
    return PostgresStorage(PostgresOptions(dsn=dsn, schema=schema or f"t_{uuid.uuid4().hex[:10]}", **opts))  # type: ignore[arg-type]


def _studio(id: str) -> Studio:
    now = utcnow()
    return Studio(id=id, account_id="acct_a", created_at=now, updated_at=now, name=id)


async def test_processes_starting_together_migrate_once(postgres_server: PostgresServer) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    stores = [_storage(postgres_server.dsn, schema) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        conn = await asyncpg.connect(postgres_server.dsn)
        try:
            rows = await conn.fetch(f'SELECT version FROM "{schema}".trax_migrations')
        finally:
            await conn.close()
        assert [r[0] for r in rows] == [v for v, _ in MIGRATIONS]
        await stores[0].apply([Insert(_studio("studio_x"))])
        assert await stores[3].get(Studio, "acct_a", "studio_x") is not None
    finally:
        await asyncio.gather(*(s.close() for s in stores))


@pytest.fixture
async def icu_dsn(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A database whose default collation is a natural-language one (ICU en-US), not C."""
    name = f"icu_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        await conn.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
        )
    except asyncpg.PostgresError as exc:
        await conn.close()
        require(False, f"this PostgreSQL has no ICU collations: {exc.__class__.__name__}")
    yield postgres_server.dsn.rsplit("/", 1)[0] + "/" + name
    await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    await conn.close()


async def test_ids_sort_by_bytes_whatever_the_database_collation(icu_dsn: str) -> None:
    # en-US would give x_a, x-a, xa, xA, xb, xB; keyset paging needs the byte order
    ids = ["xb", "x-a", "xA", "xB", "x_a", "xa"]
    store = _storage(icu_dsn)
    await store.open()
    try:
        await store.apply([Insert(_studio(i)) for i in ids])
        assert [s.id for s in await store.list(Studio, "acct_a")] == sorted(ids)
        assert [s.id for s in await store.list(Studio, "acct_a", after="xB")] == sorted(i for i in ids if i > "xB")
    finally:
        await store.close()


async def test_an_unreachable_database_is_unavailable_and_the_dsn_stays_secret() -> None:
    store = _storage(f"postgresql://trax:pw-hunter2@127.0.0.1:{free_port()}/trax", connect_timeout=1.0)
    with pytest.raises(Unavailable) as err:
        await store.open()
    assert "hunter2" not in err.value.message and "hunter2" not in repr(store)
    assert "hunter2" not in repr(PostgresOptions(dsn="postgresql://u:pw-hunter2@h/db"))  # type: ignore[arg-type]


async def test_a_hung_database_answers_unavailable_within_the_timeout_then_recovers() -> None:
    require_tool("pg_ctl")
    with PostgresServer() as pg:
        store = _storage(pg.dsn, timeout=1.0, retry_after=4)
        await store.open()
        try:
            await store.apply([Insert(_studio("studio_1"))])
            pg.pause()
            try:
                with pytest.raises(Unavailable) as err:
                    async with asyncio.timeout(15):  # only guards against a hang; the store's own limit is 1 s
                        await store.get(Studio, "acct_a", "studio_1")
                assert err.value.retry_after == 4
            finally:
                pg.resume()
            for _ in range(100):
                try:
                    assert await store.get(Studio, "acct_a", "studio_1") is not None
                    break
                except Unavailable:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("storage did not recover")
        finally:
            await store.close()


@pytest.mark.parametrize(
    "dsn",
    [
        "nonsense-hunter2",
        "mysql://u:hunter2@h/x",
        "postgresql://u:hunter2@127.0.0.1:99999/x",
        "postgresql://u:hunter2@[::1/x",
    ],
)
def test_a_malformed_dsn_is_a_config_error_that_does_not_quote_it(dsn: str) -> None:
    from trax.settings import ConfigError, validate_options

    with pytest.raises(ConfigError) as err:
        validate_options(PostgresOptions, {"dsn": dsn}, "storage.options")
    assert "storage.options.dsn" in str(err.value)
    assert "hunter2" not in str(err.value)
