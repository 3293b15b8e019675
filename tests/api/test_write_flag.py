"""PUBLIC_API_WRITE_ENABLED off: every mutating route answers 503 write_disabled and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.catalog import ROUTES, World, seed
from tests.api.conftest import Api
from trax.codec import encode_entity
from trax.domain.keys import ApiKey

pytestmark = pytest.mark.anyio


def snapshot(api: Api) -> dict[Any, bytes]:
    rows = api.runtime.storage._rows  # type: ignore[attr-defined]
    out = {}
    for k, v in rows.items():
        if isinstance(v, ApiKey):  # usage times are advisory and batched, not a write by the route
            from dataclasses import replace

            v = replace(v, last_used_at=None)
        out[k] = encode_entity(v)
    return out


async def _seeded(api: Api) -> World:
    return await seed(api.runtime, "acme")


@pytest.mark.parametrize("keys_writable", [False, True])
async def test_every_mutating_route_is_503_and_changes_nothing(make_api: Any, keys_writable: bool) -> None:
    async with make_api(public_api={"write_enabled": False, "keys_writable_when_disabled": keys_writable}) as api:
        w = await _seeded(api)
        h = {"Authorization": f"Bearer {w.secret}"}
        before = snapshot(api)
        mutating = [r for r in ROUTES if r.mutating]
        assert len(mutating) >= 17
        for route in mutating:
            if keys_writable and route.scope == "keys:manage":
                continue
            # a body that would fail validation still gets 503: the flag comes first
            for body in (route.body(w) if route.body else None, {"unknown": 1}):
                r = await api.client.request(route.method, route.path(w), json=body, headers=h)
                assert r.status_code == 503, (route, r.text)
                err = r.json()["error"]
                assert err["code"] == "write_disabled" and err["requestId"] == r.headers["x-request-id"]
        r = await api.client.put(f"/v1/uploads/{w.ids['upload']}?token={w.upload_token}", content=b"abcd")
        assert r.status_code == 503 and r.json()["error"]["code"] == "write_disabled"
        assert snapshot(api) == before
        # each upload attempt writes a blob key of its own (<account>/<asset>_<attempt>): none was written
        stored = api.runtime.blobs._blobs  # type: ignore[attr-defined]
        assert not [k for k in stored if k.startswith(f"{w.account_id}/{w.ids['asset']}")]
        # reads stay on
        for route in ROUTES:
            if route.method == "GET":
                assert (await api.client.get(route.path(w), headers=h)).status_code == 200
        if keys_writable:
            r = await api.client.post("/v1/keys", headers=h, json={"name": "ci", "scopes": ["studios:read"]})
            assert r.status_code == 201
            r = await api.client.post("/v1/studios", headers=h, json={"name": "x"})
            assert r.status_code == 503


async def test_order_401_429_403_before_503(make_api: Any) -> None:
    async with make_api(public_api={"write_enabled": False}) as api:
        w = await _seeded(api)
        assert (await api.client.post("/v1/studios", json={"name": "x"})).status_code == 401
        t = await api.tenant("other")
        read_only = await api.key(t, ["studios:read"])
        r = await api.client.post("/v1/studios", json={"name": "x"}, headers=t.auth(read_only))
        assert r.status_code == 403
        assert w.secret
