"""The hot list route: the gate's direct path answers exactly as the Litestar handler does,
over SQLite (with its read cache) every write is seen by the next list, and the two small
fixes: health in its own shape during a limiter outage, Litestar leaves host logging alone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trax.domain.errors import Unavailable
from trax.domain.studios import Studio
from trax.interfaces import Decision
from trax.server.fastpath import PageBodies, plain_list_query
from trax.server.wire import StudioPage, studio_out


@pytest.mark.parametrize(
    ("query", "parsed"),
    [
        (b"", (None, "")),
        (b"limit=50", (50, "")),
        (b"cursor=abc_-9&limit=7", (7, "abc_-9")),
        (b"cursor=", (None, "")),
        (b"limit=0", None),
        (b"limit=02", None),
        (b"limit=+2", None),
        (b"limit=", None),
        (b"limit=abc", None),
        (b"limit=1&limit=2", None),
        (b"limit=1&x=1", None),
        (b"cursor=a%3D", None),
        (b"limit", None),
        (b"limit=1&", None),
    ],
)
def test_only_plain_queries_take_the_direct_path(query: bytes, parsed: tuple[int | None, str] | None) -> None:
    assert plain_list_query(query) == parsed


def test_page_bodies_follow_row_identity() -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    t = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [Studio(id=f"studio_{i}", account_id="a", created_at=t, updated_at=t, name=f"s{i}") for i in range(3)]
    bodies = PageBodies(size=4)
    built: list[int] = []

    def build(rs: list[Studio]) -> Callable[[], StudioPage]:
        def make() -> StudioPage:
            built.append(1)
            return StudioPage(data=[studio_out(r) for r in rs])

        return make

    first = bodies.body(rows, None, build(rows))
    assert bodies.body(list(rows), None, build(rows)) is first and len(built) == 1
    changed = [rows[0], replace(rows[1], name="new"), rows[2]]  # same id, new object: a changed row
    assert b'"new"' in bodies.body(changed, None, build(changed)) and len(built) == 2
    bodies.body(rows, "cur", build(rows))
    assert len(built) == 3  # the cursor is part of the key
    for i in range(10):
        bodies.body(rows[:1], str(i), build(rows[:1]))
    assert len(bodies) == 4


def _sqlite(tmp_path: Path) -> dict[str, Any]:
    return {"storage": {"backend": "sqlite", "options": {"path": str(tmp_path / "api.db"), "synchronous": "normal"}}}


@pytest.mark.anyio
async def test_direct_and_handler_answers_are_identical(make_api: Any, tmp_path: Path) -> None:
    async with make_api(**_sqlite(tmp_path)) as api:
        t = await api.tenant("acme")
        h = t.auth(await api.key(t, ["studios:read"]))
        for i in range(5):
            await api.runtime.services.studios.create(t.operator, name=f"S{i}", description="d" if i % 2 else None)
        cursor = ""
        for _ in range(3):
            # an unknown parameter sends the same request through the Litestar handler
            direct = await api.client.get("/v1/studios", params={"limit": 2, "cursor": cursor}, headers=h)
            handler = await api.client.get(
                "/v1/studios", params={"limit": 2, "cursor": cursor, "unrelated": "1"}, headers=h
            )
            assert direct.status_code == handler.status_code == 200
            assert direct.content == handler.content
            for name in ("content-type", "content-length", "ratelimit-limit"):
                assert direct.headers[name] == handler.headers[name]
            assert direct.headers["x-request-id"] and direct.headers["ratelimit-remaining"]
            cursor = direct.json().get("nextCursor") or ""
        assert cursor == ""


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("query", "param"),
    [("limit=0", "limit"), ("limit=abc", "limit"), ("limit=02", "limit"), ("cursor=bm90LWEtY3Vyc29y", "cursor")],
)
async def test_bad_limits_and_cursors_keep_their_envelope(make_api: Any, query: str, param: str) -> None:
    async with make_api() as api:
        t = await api.tenant("acme")
        r = await api.client.get(f"/v1/studios?{query}", headers=t.auth(await api.key(t, ["studios:read"])))
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["code"] == "invalid_request" and err["param"] == param
        assert err["requestId"] == r.headers["x-request-id"]


@pytest.mark.anyio
async def test_every_write_is_seen_by_the_next_list_over_sqlite(make_api: Any, tmp_path: Path) -> None:
    async with make_api(**_sqlite(tmp_path)) as api:
        t = await api.tenant("acme")
        h = t.auth(await api.key(t, ["studios:read", "studios:write"]))
        ids = [(await api.client.post("/v1/studios", json={"name": f"S{i}"}, headers=h)).json()["id"] for i in range(3)]
        for round_ in range(5):
            await api.client.get("/v1/studios?limit=50", headers=h)  # fills both caches
            r = await api.client.patch(f"/v1/studios/{ids[1]}", json={"name": f"R{round_}"}, headers=h)
            assert r.status_code == 200
            names = [s["name"] for s in (await api.client.get("/v1/studios?limit=50", headers=h)).json()["data"]]
            assert names == ["S0", f"R{round_}", "S2"]
        assert (await api.client.delete(f"/v1/studios/{ids[0]}", headers=h)).status_code == 204
        listed = (await api.client.get("/v1/studios?limit=50", headers=h)).json()["data"]
        assert [s["id"] for s in listed] == ids[1:]


@pytest.mark.anyio
async def test_a_revoked_key_fails_on_the_next_request_over_sqlite(make_api: Any, tmp_path: Path) -> None:
    async with make_api(**_sqlite(tmp_path)) as api:
        t = await api.tenant("acme")
        secret = await api.key(t, ["studios:read"])
        assert (await api.client.get("/v1/studios", headers=t.auth(secret))).status_code == 200
        key = await api.runtime.services.keys.authenticate(secret)
        assert key.key_id is not None
        await api.runtime.services.keys.revoke(t.operator, key.key_id)
        assert (await api.client.get("/v1/studios", headers=t.auth(secret))).status_code == 401


class DownLimiter:
    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def acquire(self, key: str, *, capacity: int, refill_per_second: float, cost: int = 1) -> Decision:
        raise Unavailable("The rate limiter is unreachable.")


@pytest.mark.anyio
async def test_health_answers_degraded_in_its_own_shape_when_the_limiter_is_down(make_api: Any) -> None:
    async with make_api() as api:
        t = await api.tenant("acme")
        secret = await api.key(t, ["studios:read"])
        assert (await api.client.get("/v1/health")).json()["status"] == "ok"
        real, api.runtime.limiter = api.runtime.limiter, DownLimiter()
        try:
            r = await api.client.get("/v1/health")
            assert r.status_code == 503
            body = r.json()
            assert body["status"] == "degraded" and body["apiVersion"] and "error" not in body
            assert r.headers["x-request-id"]
            assert (await api.client.get("/v1/openapi.json")).status_code == 200  # meta routes fail open
            other = await api.client.get("/v1/studios", headers=t.auth(secret))
            assert other.status_code == 503 and other.json()["error"]["code"] == "unavailable"
        finally:
            api.runtime.limiter = real
        assert (await api.client.get("/v1/health")).status_code == 200


@pytest.mark.anyio
async def test_the_app_leaves_the_host_processs_logging_alone(make_api: Any) -> None:
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.WARNING)
    try:
        async with make_api() as api:
            assert (await api.client.get("/v1/health")).status_code == 200
            assert root.level == logging.WARNING
    finally:
        root.setLevel(before)
