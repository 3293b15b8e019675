"""Every route x scope: allowed with its scope, 403 naming it without, 401 bare, 404 across accounts."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.routes import HTTPRoute

from tests.api.catalog import META_ROUTES, ROUTES, UPLOAD_ROUTE, Route, World, seed
from tests.api.conftest import Api
from trax.domain.scopes import SCOPES
from trax.services import Principal

pytestmark = pytest.mark.anyio


async def _call(api: Api, route: Route, w: World, headers: dict[str, str], target: World | None = None) -> Any:
    body = route.body(w) if route.body else None
    return await api.client.request(route.method, route.path(target or w), json=body, headers=headers)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _key(api: Api, w: World, scopes: list[str]) -> str:
    _, secret = await api.runtime.services.keys.create(Principal.operator(w.account_id), name="s", scopes=scopes)
    return secret


async def test_catalog_covers_every_route(api: Api) -> None:
    app_routes = set()
    for r in api.client._transport.app.routes:  # type: ignore[attr-defined]
        if isinstance(r, HTTPRoute):
            if r.path_format.startswith("/_litestar"):
                continue
            for m in r.methods - {"OPTIONS"}:
                app_routes.add((m, r.path_format))
    listed = {(r.method, r.openapi_path) for r in ROUTES} | set(META_ROUTES) | {UPLOAD_ROUTE}
    assert app_routes == listed


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
async def test_route_with_its_scope_only(api: Api, route: Route) -> None:
    w = await seed(api.runtime, "a")
    secret = await _key(api, w, [route.scope] if route.scope else ["studios:read"])
    r = await _call(api, route, w, _bearer(secret))
    assert r.status_code in route.ok, r.text
    assert r.headers["ratelimit-limit"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
async def test_route_without_its_scope_is_403(api: Api, route: Route) -> None:
    w = await seed(api.runtime, "a")
    others = [s for s in SCOPES if s != route.scope]
    r = await _call(api, route, w, {"X-API-Key": await _key(api, w, others)})
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "forbidden"
    assert err["requiredScope"] == route.scope
    assert route.scope in err["message"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
async def test_route_without_credential_is_401(api: Api, route: Route) -> None:
    w = await seed(api.runtime, "a")
    for headers in ({}, _bearer("sk_live_" + "x" * 40), {"Authorization": "Basic abc"}, {"X-API-Key": "nope"}):
        r = await _call(api, route, w, headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("route", [r for r in ROUTES if "{" in r.template], ids=lambda r: f"{r.method} {r.template}")
async def test_other_accounts_objects_are_404(api: Api, route: Route) -> None:
    a = await seed(api.runtime, "a")
    b = await seed(api.runtime, "b")
    r = await _call(api, route, a, _bearer(a.secret), target=b)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    # and B's objects are untouched: B still reads them all
    for path in (
        f"/v1/studios/{b.ids['studio']}",
        f"/v1/media/{b.ids['asset']}",
        f"/v1/connections/{b.ids['connection']}",
    ):
        assert (await api.client.get(path, headers=_bearer(b.secret))).status_code == 200


LISTS = {"studios", "sources", "destinations", "connections", "messages", "media", "keys"}


async def test_lists_show_only_own_objects(api: Api) -> None:
    a = await seed(api.runtime, "a")
    b = await seed(api.runtime, "b")
    b_ids = set(b.ids.values())
    for route in ROUTES:
        if route.method == "GET" and route.template.rsplit("/", 1)[-1] in LISTS:
            r = await api.client.get(route.path(a), headers=_bearer(a.secret))
            assert r.status_code == 200
            assert not {item["id"] for item in r.json()["data"]} & b_ids


async def test_revoked_key_is_401_on_next_request(api: Api) -> None:
    w = await seed(api.runtime, "a")
    secret = await _key(api, w, ["studios:read", "keys:manage"])
    h = _bearer(secret)
    keys = (await api.client.get("/v1/keys", headers=h)).json()["data"]
    own = next(k for k in keys if k["name"] == "s")
    assert (await api.client.delete(f"/v1/keys/{own['id']}", headers=h)).status_code == 204
    r = await api.client.get("/v1/studios", headers=h)
    assert r.status_code == 401


async def test_rotate_returns_new_secret_and_revokes_old(api: Api) -> None:
    w = await seed(api.runtime, "a")
    h = _bearer(w.secret)
    keys = (await api.client.get("/v1/keys", headers=h)).json()["data"]
    full = next(k for k in keys if k["name"] == "full")
    assert "secret" not in full and full["prefix"] == w.secret[:12]
    r = await api.client.post(f"/v1/keys/{full['id']}/rotate", headers=h)
    assert r.status_code == 201
    new = r.json()
    assert new["secret"] != w.secret and new["scopes"] == full["scopes"]
    assert r.headers["location"] == f"/v1/keys/{new['id']}"
    assert (await api.client.get("/v1/studios", headers=h)).status_code == 401
    assert (await api.client.get("/v1/studios", headers=_bearer(new["secret"]))).status_code == 200


async def test_last_used_at_is_batched(api: Api) -> None:
    w = await seed(api.runtime, "a")
    h = _bearer(w.secret)
    keys = (await api.client.get("/v1/keys", headers=h)).json()["data"]
    assert all("lastUsedAt" not in k for k in keys)  # nothing written per request
    assert await api.runtime.services.keys.flush_usage() == 1
    keys = (await api.client.get("/v1/keys", headers=h)).json()["data"]
    used = [k for k in keys if "lastUsedAt" in k]
    assert [k["name"] for k in used] == ["full"] and used[0]["lastUsedAt"].endswith("Z")
