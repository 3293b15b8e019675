"""Failed authentication is limited per address, before any storage lookup; accounts can share one bucket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Tenant
from tests.conftest import memory_settings
from trax.runtime import Runtime
from trax.server.app import create_app
from trax.services import Principal

pytestmark = pytest.mark.anyio

BOGUS = "sk_live_" + "x" * 43
THROTTLE = {"backend": "memory", "auth_failure_capacity": 5, "auth_failure_refill_per_second": 0.01}


class Deployment:
    def __init__(self, runtime: Runtime, app: Any) -> None:
        self.runtime = runtime
        self.app = app
        self.lookups = 0
        find_unique = runtime.storage.find_unique

        async def counting(*args: Any, **kw: Any) -> Any:
            self.lookups += 1
            return await find_unique(*args, **kw)

        runtime.storage.find_unique = counting  # type: ignore[method-assign]

    def client(self, address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30)

    async def tenant(self, name: str) -> Tenant:
        acct = await self.runtime.services.accounts.create(name)
        return Tenant(acct.id, Principal.operator(acct.id))

    async def key(self, t: Tenant, scopes: list[str]) -> str:
        return (await self.runtime.services.keys.create(t.operator, name="k", scopes=scopes))[1]


@pytest.fixture
def deployment(tmp_path: Path) -> Callable[..., Any]:
    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Deployment]:
        rt = Runtime(memory_settings(tmp_path, **overrides))  # type: ignore[arg-type]
        app = create_app(rt)
        async with app.lifespan():
            yield Deployment(rt, app)

    return make


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_failures_past_the_bucket_get_429_without_touching_storage(deployment: Any) -> None:
    async with deployment(limits=THROTTLE) as d, d.client("203.0.113.7") as c:
        codes = [(await c.get("/v1/studios", headers=_bearer(BOGUS + str(i)))).status_code for i in range(5)]
        assert codes == [401] * 5
        before = d.lookups
        assert before == 5
        for i in range(20):
            r = await c.get("/v1/studios", headers=_bearer(BOGUS + "y" + str(i)))
            assert r.status_code == 429
            err = r.json()["error"]
            assert err["code"] == "rate_limited" and err["requestId"] == r.headers["x-request-id"]
            assert int(r.headers["retry-after"]) >= 1
            assert BOGUS not in r.text
        assert d.lookups == before  # refused before the storage lookup


async def test_every_kind_of_failed_credential_counts(deployment: Any) -> None:
    async with deployment(limits=THROTTLE) as d, d.client("203.0.113.8") as c:
        bad = [{"Authorization": "Basic abc"}, {"X-API-Key": "nope"}, _bearer("sk_live_short"), _bearer(BOGUS)]
        bad.append(_bearer(BOGUS))
        assert [(await c.get("/v1/studios", headers=h)).status_code for h in bad] == [401] * 5
        assert (await c.get("/v1/studios", headers=_bearer(BOGUS))).status_code == 429


async def test_other_addresses_are_not_affected(deployment: Any) -> None:
    async with deployment(limits=THROTTLE) as d, d.client("203.0.113.9") as bad, d.client("198.51.100.1") as good:
        t = await d.tenant("acme")
        secret = await d.key(t, ["studios:read"])
        for _ in range(8):
            await bad.get("/v1/studios", headers=_bearer(BOGUS))
        assert (await bad.get("/v1/studios", headers=_bearer(BOGUS))).status_code == 429
        assert (await good.get("/v1/studios", headers=_bearer(secret))).status_code == 200
        assert (await good.get("/v1/studios", headers=_bearer(BOGUS))).status_code == 401


async def test_successes_do_not_use_up_the_failure_bucket(deployment: Any) -> None:
    async with deployment(limits=THROTTLE) as d, d.client("203.0.113.10") as c:
        t = await d.tenant("acme")
        secret = await d.key(t, ["studios:read"])
        for _ in range(20):
            assert (await c.get("/v1/studios", headers=_bearer(secret))).status_code == 200
        codes = [(await c.get("/v1/studios", headers=_bearer(BOGUS))).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]


async def test_a_known_good_key_keeps_working_from_a_blocked_address(deployment: Any) -> None:
    # a client behind the same NAT as an attacker is not locked out once its key has proved itself
    async with deployment(limits=THROTTLE) as d, d.client("203.0.113.11") as c:
        t = await d.tenant("acme")
        secret = await d.key(t, ["studios:read"])
        assert (await c.get("/v1/studios", headers=_bearer(secret))).status_code == 200
        for _ in range(8):
            await c.get("/v1/studios", headers=_bearer(BOGUS))
        assert (await c.get("/v1/studios", headers=_bearer(BOGUS))).status_code == 429
        assert (await c.get("/v1/studios", headers=_bearer(secret))).status_code == 200
        # a once-good key that is now revoked is a failure again, not a way around the block
        key_id = (await d.runtime.services.keys.authenticate(secret)).key_id
        assert key_id is not None
        await d.runtime.services.keys.revoke(t.operator, key_id)
        assert (await c.get("/v1/studios", headers=_bearer(secret))).status_code == 401


async def test_per_account_bucket_is_shared_by_its_keys(deployment: Any) -> None:
    limits = {
        "backend": "memory",
        "options": {"capacity": 100, "refill_per_second": 0.01},
        "account_capacity": 3,
        "account_refill_per_second": 0.01,
    }
    async with deployment(limits=limits) as d, d.client("127.0.0.1") as c:
        t, other = await d.tenant("acme"), await d.tenant("other")
        keys = [await d.key(t, ["studios:read"]) for _ in range(3)]
        assert [(await c.get("/v1/studios", headers=_bearer(k))).status_code for k in keys] == [200] * 3
        r = await c.get("/v1/studios", headers=_bearer(await d.key(t, ["studios:read"])))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.headers["ratelimit-limit"] == "3"
        # another account has its own
        assert (await c.get("/v1/studios", headers=_bearer(await d.key(other, ["studios:read"])))).status_code == 200


async def test_per_account_bucket_is_off_by_default(deployment: Any) -> None:
    limits = {"backend": "memory", "options": {"capacity": 3, "refill_per_second": 0.01}}
    async with deployment(limits=limits) as d, d.client("127.0.0.1") as c:
        t = await d.tenant("acme")
        for _ in range(4):
            k = await d.key(t, ["studios:read"])
            assert [(await c.get("/v1/studios", headers=_bearer(k))).status_code for _ in range(3)] == [200] * 3
