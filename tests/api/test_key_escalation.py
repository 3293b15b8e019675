"""A key can only hand out what it holds: scopes, rate limit and lifetime; the operator keeps full power."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.api.conftest import Api
from trax.domain.base import utcnow
from trax.domain.errors import Conflict, Forbidden
from trax.domain.keys import RateLimitOverride
from trax.domain.scopes import SCOPES

pytestmark = pytest.mark.anyio

POWERFUL = ["studios:write", "stream:write", "media:write", "keys:manage"]


async def _key_id(api: Api, secret: str) -> str:
    key = await api.runtime.services.keys.authenticate(secret)
    assert key.key_id is not None
    return key.key_id


def _forbidden(r: Any, *words: str) -> None:
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "forbidden"
    for w in words:
        assert w in err["message"]


async def test_manage_only_key_cannot_create_a_more_powerful_key(api: Api) -> None:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["keys:manage"]))
    r = await api.client.post("/v1/keys", headers=h, json={"name": "up", "scopes": POWERFUL})
    _forbidden(r, "studios:write")
    assert "secret" not in r.text
    # one missing scope is enough to refuse
    r = await api.client.post("/v1/keys", headers=h, json={"name": "up", "scopes": ["keys:manage", "chat:read"]})
    _forbidden(r, "chat:read")
    # nothing was created: only the caller's own key exists
    keys = (await api.client.get("/v1/keys", headers=h)).json()["data"]
    assert len(keys) == 1
    # a subset of its own scopes is fine
    r = await api.client.post("/v1/keys", headers=h, json={"name": "same", "scopes": ["keys:manage"]})
    assert r.status_code == 201


async def test_subset_key_creates_within_its_scopes(api: Api) -> None:
    t = await api.tenant("acme")
    h = t.auth(await api.key(t, ["keys:manage", "studios:read", "studios:write"]))
    r = await api.client.post("/v1/keys", headers=h, json={"name": "ro", "scopes": ["studios:read"]})
    assert r.status_code == 201
    ro = r.json()["secret"]
    assert (await api.client.get("/v1/studios", headers=t.auth(ro))).status_code == 200


async def test_manage_only_key_cannot_rotate_or_revoke_a_more_powerful_key(api: Api) -> None:
    t = await api.tenant("acme")
    full = await api.key(t, SCOPES)
    full_id = await _key_id(api, full)
    h = t.auth(await api.key(t, ["keys:manage"]))
    r = await api.client.post(f"/v1/keys/{full_id}/rotate", headers=h)
    _forbidden(r)
    assert "secret" not in r.text
    r = await api.client.delete(f"/v1/keys/{full_id}", headers=h)
    _forbidden(r)
    # the full key is untouched
    assert (await api.client.get("/v1/studios", headers=t.auth(full))).status_code == 200
    listed = {k["id"]: k for k in (await api.client.get("/v1/keys", headers=h)).json()["data"]}
    assert len(listed) == 2 and "revokedAt" not in listed[full_id]


async def test_rotate_and_revoke_within_scopes_still_work(api: Api) -> None:
    t = await api.tenant("acme")
    ro = await api.key(t, ["studios:read"])
    ro_id = await _key_id(api, ro)
    h = t.auth(await api.key(t, ["keys:manage", "studios:read"]))
    r = await api.client.post(f"/v1/keys/{ro_id}/rotate", headers=h)
    assert r.status_code == 201
    new = r.json()
    assert (await api.client.delete(f"/v1/keys/{new['id']}", headers=h)).status_code == 204


async def test_a_key_may_rotate_itself(api: Api) -> None:
    t = await api.tenant("acme")
    own = await api.key(t, ["keys:manage"])
    r = await api.client.post(f"/v1/keys/{await _key_id(api, own)}/rotate", headers=t.auth(own))
    assert r.status_code == 201


async def test_operator_keeps_full_power(api: Api) -> None:
    t = await api.tenant("acme")
    keys = api.runtime.services.keys
    big = RateLimitOverride(capacity=10_000, refill_per_second=5_000)
    key, _ = await keys.create(t.operator, name="ops", scopes=list(SCOPES), rate_limit=big)
    assert key.rate_limit == big
    new, _ = await keys.rotate(t.operator, key.id, grace_seconds=0)
    assert new.rate_limit == big
    await keys.revoke(t.operator, new.id)


async def test_rate_limit_over_the_default_is_refused_over_v1(make_api: Any) -> None:
    async with make_api(limits={"backend": "memory", "options": {"capacity": 50, "refill_per_second": 5}}) as api:
        t = await api.tenant("acme")
        h = t.auth(await api.key(t, SCOPES))
        body: dict[str, Any] = {"name": "x", "scopes": ["studios:read"]}
        for rl in ({"capacity": 1_000_000, "refillPerSecond": 1_000_000}, {"capacity": 51, "refillPerSecond": 1}):
            r = await api.client.post("/v1/keys", headers=h, json={**body, "rateLimit": rl})
            _forbidden(r, "rateLimit")
            assert r.json()["error"]["param"] == "rateLimit"
        r = await api.client.post(
            "/v1/keys", headers=h, json={**body, "rateLimit": {"capacity": 5, "refillPerSecond": 6}}
        )
        _forbidden(r, "rateLimit")
        # lowering a key's limit is always allowed
        r = await api.client.post(
            "/v1/keys", headers=h, json={**body, "rateLimit": {"capacity": 50, "refillPerSecond": 5}}
        )
        assert r.status_code == 201 and r.json()["rateLimit"] == {"capacity": 50, "refillPerSecond": 5.0}


async def test_rotating_an_operator_boosted_key_needs_the_key_itself(make_api: Any) -> None:
    async with make_api(limits={"backend": "memory", "options": {"capacity": 50, "refill_per_second": 5}}) as api:
        t = await api.tenant("acme")
        boosted = await api.key(
            t, ["studios:read", "keys:manage"], rate_limit=RateLimitOverride(capacity=500, refill_per_second=50)
        )
        boosted_id = await _key_id(api, boosted)
        other = t.auth(await api.key(t, SCOPES))
        _forbidden(await api.client.post(f"/v1/keys/{boosted_id}/rotate", headers=other), "rateLimit")
        # the key itself gains nothing by rotating: allowed
        r = await api.client.post(f"/v1/keys/{boosted_id}/rotate", headers=t.auth(boosted))
        assert r.status_code == 201 and r.json()["rateLimit"]["capacity"] == 500


async def test_a_key_in_its_grace_period_cannot_be_rotated_again_nor_mint_keys(api: Api) -> None:
    t = await api.tenant("acme")
    old = await api.key(t, SCOPES)
    old_id = await _key_id(api, old)
    r = await api.client.post(f"/v1/keys/{old_id}/rotate", headers=t.auth(old), json={"gracePeriodSeconds": 3600})
    assert r.status_code == 201
    new = r.json()["secret"]
    # the old secret still works during the grace period...
    assert (await api.client.get("/v1/studios", headers=t.auth(old))).status_code == 200
    # ...but cannot be rotated again (by anyone: its successor already exists)
    for who in (old, new):
        r = await api.client.post(f"/v1/keys/{old_id}/rotate", headers=t.auth(who))
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict", r.text
    with pytest.raises(Conflict):
        await api.runtime.services.keys.rotate(t.operator, old_id)
    # ...nor mint a fresh secret another way
    r = await api.client.post("/v1/keys", headers=t.auth(old), json={"name": "escape", "scopes": ["studios:read"]})
    _forbidden(r, "revocation")
    new_id = await _key_id(api, new)
    _forbidden(await api.client.post(f"/v1/keys/{new_id}/rotate", headers=t.auth(old)), "revocation")
    # it may still revoke (revoking gives no power), e.g. itself
    assert (await api.client.delete(f"/v1/keys/{old_id}", headers=t.auth(old))).status_code == 204


async def test_a_key_cannot_mint_a_key_that_outlives_it(api: Api) -> None:
    t = await api.tenant("acme")
    ends = utcnow() + timedelta(hours=1)
    short = await api.key(t, ["keys:manage", "studios:read"], expires_at=ends)
    h = t.auth(short)
    later = (ends + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    r = await api.client.post("/v1/keys", headers=h, json={"name": "x", "scopes": ["studios:read"], "expiresAt": later})
    _forbidden(r, "expiresAt")
    assert r.json()["error"]["param"] == "expiresAt"
    # without expiresAt the new key inherits the creator's end
    r = await api.client.post("/v1/keys", headers=h, json={"name": "x", "scopes": ["studios:read"]})
    assert r.status_code == 201
    keys = api.runtime.services.keys
    created = await keys.get(t.operator, r.json()["id"])
    creator = await keys.get(t.operator, await _key_id(api, short))
    assert creator.expires_at is not None and created.expires_at == creator.expires_at
    # nor rotate a longer-lived key
    forever_id = await _key_id(api, await api.key(t, ["studios:read"]))
    _forbidden(await api.client.post(f"/v1/keys/{forever_id}/rotate", headers=h), "expires")


async def test_service_refuses_escalation_directly(api: Api) -> None:
    # the rule lives in the use case, so every front end (SDK, plugins) gets it
    t = await api.tenant("acme")
    principal = await api.runtime.services.keys.authenticate(await api.key(t, ["keys:manage"]))
    with pytest.raises(Forbidden):
        await api.runtime.services.keys.create(principal, name="x", scopes=["studios:write"])
