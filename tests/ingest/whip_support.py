"""Shared set-up for the WHIP/WHEP tests: an in-process runtime with the whip transport on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from tests.conftest import memory_settings
from trax.domain.sources import Source
from trax.ingest.low_s import to_low_s
from trax.runtime import Runtime
from trax.services import Principal


@dataclass
class Plane:
    rt: Runtime
    op: Principal
    studio_id: str
    base: str

    @property
    def transport(self) -> Any:
        return self.rt.transports["whip"]

    async def source(self, kind: str = "whip") -> Source:
        return await self.rt.services.sources.create(self.op, self.studio_id, name="cam", kind=kind)

    async def token(self, path: str, action: str, audience: str | None = None, ttl: int | None = None) -> str:
        return (await self.rt.media_tokens.mint(path=path, action=action, audience=audience, ttl=ttl)).token

    def forge(self, **claims: Any) -> str:
        """A token signed with the real key, with any claims (expired, unprovisioned path...)."""
        tokens = self.rt.media_tokens
        key = tokens._own.keys[tokens.kid].private
        now = int(time.time())
        body = {"iss": "trax", "aud": "trax-talk", "action": "publish", "iat": now, "exp": now + 60, **claims}
        # low-S, as trax signs and requires: a raw ECDSA signature is high-S half the time (a 401 by chance)
        return to_low_s(jwt.encode(body, key, "ES256", headers={"kid": tokens.kid}))

    def url(self, path: str, endpoint: str) -> str:
        return f"{self.base}/{path}/{endpoint}"

    async def status(self, src: Source) -> str:
        return (await self.rt.services.sources.get(self.op, self.studio_id, src.id)).status.value


@asynccontextmanager
async def whip_plane(tmp_path: Path, *, ingest: dict[str, Any] | None = None, **whip: Any) -> AsyncIterator[Plane]:
    """``whip`` are the transport's options; ``ingest`` other ``ingest.*`` settings."""
    options = {"enabled": True, "port": 0, "host_candidates": ["127.0.0.1"], **whip}
    settings = memory_settings(tmp_path, ingest={"whip": options, "idle_timeout_seconds": 2.0, **(ingest or {})})
    rt = Runtime(settings)  # type: ignore[arg-type]
    async with rt:
        await rt.start_transports()
        acct = await rt.services.accounts.create("acme")
        op = Principal.operator(acct.id)
        studio = await rt.services.studios.create(op, name="studio")
        yield Plane(rt, op, studio.id, rt.transports["whip"].base_url)


async def wait_for(predicate: Callable[[], Any], within: float = 20.0, step: float = 0.05) -> None:
    """Poll until ``predicate()`` (sync or async) is truthy; TimeoutError otherwise (a bound, not a timing claim)."""
    import asyncio
    import inspect

    async with asyncio.timeout(within):
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return
            await asyncio.sleep(step)
