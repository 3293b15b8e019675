"""The rules every Storage backend keeps (interfaces.Storage), checked on memory and SQLite alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.helpers import make_storage
from trax.domain.accounts import Account
from trax.domain.errors import Conflict, NotFound
from trax.domain.ids import IdGenerator
from trax.domain.keys import ApiKey
from trax.domain.studios import Studio
from trax.interfaces import Delete, Insert, Storage, Update

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 28, 17, 0, 0, 123000, tzinfo=UTC)
ids = IdGenerator()


@pytest.fixture(params=["memory", "sqlite"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    st = make_storage(request.param, tmp_path)
    await st.open()
    try:
        yield st
    finally:
        await st.close()


def studio(account: str, name: str = "s") -> Studio:
    return Studio(id=ids.new("studio"), account_id=account, created_at=T0, updated_at=T0, name=name)


def key(account: str, hash_: str) -> ApiKey:
    return ApiKey(
        id=ids.new("key"),
        account_id=account,
        created_at=T0,
        updated_at=T0,
        name="k",
        prefix="sk_live_abcd",
        key_hash=hash_,
        scopes=("studios:read",),
    )


async def test_round_trip_and_account_scoping(storage: Storage) -> None:
    a = studio("acct_A", "alpha")
    await storage.apply([Insert(a)])
    got = await storage.get(Studio, "acct_A", a.id)
    assert got == a
    assert await storage.get(Studio, "acct_B", a.id) is None
    assert await storage.list(Studio, "acct_B") == []
    assert await storage.get(Account, "acct_A", a.id) is None  # another kind


async def test_list_is_ordered_after_and_limited(storage: Storage) -> None:
    made = [studio("acct_A", str(i)) for i in range(7)]
    for s in reversed(made):
        await storage.apply([Insert(s)])
    all_ids = [s.id for s in await storage.list(Studio, "acct_A", limit=100)]
    assert all_ids == sorted(s.id for s in made)
    assert [s.id for s in await storage.list(Studio, "acct_A", after=all_ids[2], limit=3)] == all_ids[3:6]
    assert await storage.list(Studio, "acct_A", after=all_ids[-1]) == []


async def test_apply_is_all_or_nothing(storage: Storage) -> None:
    a, b = studio("acct_A"), studio("acct_A")
    await storage.apply([Insert(a)])
    with pytest.raises(Conflict):
        await storage.apply([Insert(b), Insert(a)])  # the duplicate comes second
    assert await storage.get(Studio, "acct_A", b.id) is None
    with pytest.raises(NotFound):
        await storage.apply([Update(replace(a, name="changed")), Delete(Studio, "acct_A", "studio_missing")])
    assert (await storage.get(Studio, "acct_A", a.id)).name == "s"  # type: ignore[union-attr]


async def test_update_delete_missing_and_compare_and_set(storage: Storage) -> None:
    a = studio("acct_A")
    with pytest.raises(NotFound):
        await storage.apply([Update(a)])
    with pytest.raises(NotFound):
        await storage.apply([Delete(Studio, "acct_A", a.id)])
    await storage.apply([Insert(a)])
    later = T0 + timedelta(seconds=1)
    with pytest.raises(Conflict):
        await storage.apply([Update(replace(a, name="x", updated_at=later), expect_updated_at=later)])
    await storage.apply([Update(replace(a, name="x", updated_at=later), expect_updated_at=T0)])
    with pytest.raises(Conflict):  # the same stale expectation now fails
        await storage.apply([Update(replace(a, name="y", updated_at=later), expect_updated_at=T0)])
    with pytest.raises(NotFound):  # deleting through another account
        await storage.apply([Delete(Studio, "acct_B", a.id)])
    await storage.apply([Delete(Studio, "acct_A", a.id)])
    assert await storage.get(Studio, "acct_A", a.id) is None


async def test_unique_keys_across_accounts(storage: Storage) -> None:
    k1 = key("acct_A", "h1")
    await storage.apply([Insert(k1)])
    assert (await storage.find_unique(ApiKey, "api_key.hash", "h1")) == k1
    assert await storage.find_unique(ApiKey, "api_key.hash", "nope") is None
    assert await storage.find_unique(Studio, "api_key.hash", "h1") is None
    with pytest.raises(Conflict):
        await storage.apply([Insert(key("acct_B", "h1"))])
    # an update that changes the value frees the old one
    await storage.apply([Update(replace(k1, key_hash="h2"))])
    assert await storage.find_unique(ApiKey, "api_key.hash", "h1") is None
    await storage.apply([Insert(key("acct_B", "h1"))])
    await storage.apply([Delete(ApiKey, "acct_A", k1.id)])
    assert await storage.find_unique(ApiKey, "api_key.hash", "h2") is None


async def test_touch_keys_records_last_use(storage: Storage) -> None:
    k1, k2 = key("acct_A", "a"), key("acct_B", "b")
    await storage.apply([Insert(k1), Insert(k2)])
    when = T0 + timedelta(minutes=5)
    await storage.touch_keys({k1.id: when, "key_unknown": when})
    assert (await storage.get(ApiKey, "acct_A", k1.id)).last_used_at == when  # type: ignore[union-attr]
    assert (await storage.get(ApiKey, "acct_B", k2.id)).last_used_at is None  # type: ignore[union-attr]


async def test_ping(storage: Storage) -> None:
    await storage.ping()
