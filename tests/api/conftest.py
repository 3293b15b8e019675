"""Fixtures for the /v1 API tests: an in-memory runtime behind the real app, plus keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import memory_settings
from trax.domain.scopes import SCOPES
from trax.runtime import Runtime
from trax.server.app import create_app
from trax.services import Principal


@dataclass
class Tenant:
    account_id: str
    operator: Principal

    def auth(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}


@dataclass
class Api:
    runtime: Runtime
    client: httpx.AsyncClient

    async def tenant(self, name: str) -> Tenant:
        acct = await self.runtime.services.accounts.create(name)
        return Tenant(acct.id, Principal.operator(acct.id))

    async def key(self, tenant: Tenant, scopes: tuple[str, ...] | list[str] = SCOPES, **kw: Any) -> str:
        _, secret = await self.runtime.services.keys.create(tenant.operator, name="test", scopes=list(scopes), **kw)
        return secret


ApiFactory = Callable[..., Any]


@pytest.fixture
def make_api(tmp_path: Path) -> Callable[..., Any]:
    """``async with make_api(**settings_overrides) as api:`` a started app with an HTTP client."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Api]:
        settings = memory_settings(tmp_path, **overrides)
        rt = Runtime(settings)  # type: ignore[arg-type]
        app = create_app(rt)
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
                yield Api(rt, client)

    return make


@pytest.fixture
async def api(make_api: Callable[..., Any]) -> AsyncIterator[Api]:
    async with make_api() as a:
        yield a
