"""Keyset pages over HTTP: limits, cursors, and walks that race inserts and deletes."""

from __future__ import annotations

import base64
import random
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Api
from trax.services import Principal

pytestmark = pytest.mark.anyio


async def _studios(api: Api, op: Principal, n: int) -> list[str]:
    return [(await api.runtime.services.studios.create(op, name=f"s{i}")).id for i in range(n)]


async def test_limit_rules(api: Api) -> None:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["studios:read"]))
    await _studios(api, t.operator, 205)
    r = await api.client.get("/v1/studios", headers=h)
    assert len(r.json()["data"]) == 50 and r.json()["nextCursor"]
    r = await api.client.get("/v1/studios?limit=1000", headers=h)
    assert len(r.json()["data"]) == 200
    r = await api.client.get("/v1/studios?limit=200", headers=h)
    last = await api.client.get(f"/v1/studios?limit=200&cursor={r.json()['nextCursor']}", headers=h)
    assert len(last.json()["data"]) == 5 and "nextCursor" not in last.json()
    for bad in ("0", "-1", "abc", "1.5", ""):
        r = await api.client.get(f"/v1/studios?limit={bad}", headers=h)
        assert r.status_code == 400, bad
        assert r.json()["error"] == {**r.json()["error"], "code": "invalid_request", "param": "limit"}
    r = await api.client.get("/v1/studios?cursor=", headers=h)
    assert r.status_code == 200 and len(r.json()["data"]) == 50


async def test_garbage_and_tampered_cursors(api: Api) -> None:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["studios:read", "media:read"]))
    ids = await _studios(api, t.operator, 3)
    good = (await api.client.get("/v1/studios?limit=1", headers=h)).json()["nextCursor"]
    raw = bytearray(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))
    raw[-1] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    forged = base64.urlsafe_b64encode(b"\x00" * 12 + f"studio\x00{ids[0]}".encode()).decode()
    for bad in ("zzz", "!!!", "%00", "a" * 600, tampered, forged, good + "x", "=="):
        r = await api.client.get("/v1/studios", params={"cursor": bad}, headers=h)
        assert r.status_code == 400, bad
        assert r.json()["error"]["code"] == "invalid_request" and r.json()["error"]["param"] == "cursor"
    # a cursor from one list is refused by another
    r = await api.client.get("/v1/media", params={"cursor": good}, headers=h)
    assert r.status_code == 400


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(min_value=1, max_value=200), seed=st.integers(0, 2**16))
async def test_walk_while_inserting_and_deleting(api: Api, limit: int, seed: int) -> None:
    rng = random.Random(seed)
    t = await api.tenant(f"acme-{seed}-{limit}-{rng.random()}")
    h = t.auth(await api.key(t, ["studios:read"]))
    initial = await _studios(api, t.operator, rng.randint(30, 120))
    doomed = set(rng.sample(initial, len(initial) // 3))
    survivors = [i for i in initial if i not in doomed]
    seen: list[str] = []

    async def churn() -> None:
        for victim in list(doomed):
            await api.runtime.services.studios.create(t.operator, name="new")
            await api.runtime.services.studios.delete(t.operator, victim)
            await anyio.lowlevel.checkpoint()

    async def walk() -> None:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            r = await api.client.get("/v1/studios", params=params, headers=h)
            assert r.status_code == 200
            page = r.json()
            assert len(page["data"]) <= limit
            seen.extend(item["id"] for item in page["data"])
            cursor = page.get("nextCursor")
            if cursor is None:
                return
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(churn)
            tg.start_soon(walk)
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert seen == sorted(seen), "items out of id order"
    missing = set(survivors) - set(seen)
    assert not missing, f"skipped {len(missing)} survivors"
