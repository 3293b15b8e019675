"""Per-key token buckets: RateLimit-* headers, 429 with Retry-After, other keys unaffected."""

from __future__ import annotations

from typing import Any

import pytest

from trax.domain.keys import RateLimitOverride

pytestmark = pytest.mark.anyio


async def test_bucket_bound_429_and_other_key_unaffected(make_api: Any) -> None:
    # a slow refill so the bound is exact whatever the machine's speed: capacity + rate*T with T small
    async with make_api(limits={"backend": "memory", "options": {"capacity": 5, "refill_per_second": 0.01}}) as api:
        t = await api.tenant("acme")
        k1, k2 = await api.key(t, ["studios:read"]), await api.key(t, ["studios:read"])
        statuses = []
        remaining = []
        for _ in range(12):
            r = await api.client.get("/v1/studios", headers=t.auth(k1))
            statuses.append(r.status_code)
            remaining.append(int(r.headers["ratelimit-remaining"]))
            assert r.headers["ratelimit-limit"] == "5"
            assert int(r.headers["ratelimit-reset"]) >= 0
        assert statuses.count(200) == 5 and statuses[:5] == [200] * 5
        assert remaining[:5] == [4, 3, 2, 1, 0]
        r = await api.client.get("/v1/studios", headers=t.auth(k1))
        assert r.status_code == 429
        err = r.json()["error"]
        assert err["code"] == "rate_limited" and err["requestId"] == r.headers["x-request-id"]
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["ratelimit-remaining"] == "0"
        # the other key has its own bucket
        assert (await api.client.get("/v1/studios", headers=t.auth(k2))).status_code == 200
        # the limit applies before scope: a 429 even on a route the key may not call
        r = await api.client.get("/v1/keys", headers=t.auth(k1))
        assert r.status_code == 429


async def test_per_key_override(make_api: Any) -> None:
    async with make_api(limits={"backend": "memory", "options": {"capacity": 2, "refill_per_second": 0.01}}) as api:
        t = await api.tenant("acme")
        big = await api.key(t, ["studios:read"], rate_limit=RateLimitOverride(capacity=7, refill_per_second=0.01))
        codes = [(await api.client.get("/v1/studios", headers=t.auth(big))).status_code for _ in range(9)]
        assert codes.count(200) == 7
        r = await api.client.get("/v1/studios", headers=t.auth(big))
        assert r.headers["ratelimit-limit"] == "7"


async def test_meta_routes_limited_per_address(make_api: Any) -> None:
    async with make_api(limits={"backend": "memory", "meta_capacity": 3, "meta_refill_per_second": 0.01}) as api:
        codes = [(await api.client.get("/v1/health")).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = await api.client.get("/v1/health")
        assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1


async def test_route_cost_from_config(make_api: Any) -> None:
    limits = {
        "backend": "memory",
        "options": {"capacity": 10, "refill_per_second": 0.01},
        "route_costs": {"createStudio": 4},
    }
    async with make_api(limits=limits) as api:
        t = await api.tenant("acme")
        h = t.auth(await api.key(t, ["studios:write", "studios:read"]))
        r = await api.client.post("/v1/studios", headers=h, json={"name": "a"})
        assert r.status_code == 201 and r.headers["ratelimit-remaining"] == "6"
        r = await api.client.get("/v1/studios", headers=h)
        assert r.headers["ratelimit-remaining"] == "5"
        assert (await api.client.post("/v1/studios", headers=h, json={"name": "b"})).status_code == 201
        r = await api.client.post("/v1/studios", headers=h, json={"name": "c"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
