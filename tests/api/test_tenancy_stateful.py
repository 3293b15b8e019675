"""Two accounts, random calls: nothing account A does reads, changes or reveals B's objects."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule

from tests.conftest import memory_settings
from trax.domain.scopes import SCOPES
from trax.runtime import Runtime
from trax.server.app import create_app
from trax.services import Principal

ACCOUNTS = ("a", "b")
names = st.text(alphabet="abcdefgh XYZ", min_size=1, max_size=20)


class TwoTenants(RuleBasedStateMachine):
    studios = Bundle("studios")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        self.secret: dict[str, str] = {}
        self.owned: dict[str, dict[str, str]] = {a: {} for a in ACCOUNTS}  # account -> studio id -> name
        self.live: set[str] = set()
        self.fixed: dict[str, dict[str, str]] = {}  # account -> other objects by kind
        self._ready = asyncio.Event()
        self._done = asyncio.Event()
        # the app's lifespan must be entered and left by the same task
        self._holder = self.loop.create_task(self._hold())
        self.run(self._ready.wait())

    async def _hold(self) -> None:
        try:
            async with self.stack:
                await self._start()
                self._ready.set()
                await self._done.wait()
        finally:
            self._ready.set()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    async def _start(self) -> None:
        import tempfile

        tmp = Path(self.stack.enter_context(tempfile.TemporaryDirectory()))
        rt = Runtime(memory_settings(tmp))  # type: ignore[arg-type]
        app = create_app(rt)
        await self.stack.enter_async_context(app.lifespan())
        transport = httpx.ASGITransport(app=app)
        self.client = await self.stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://t"))
        for name in ACCOUNTS:
            acct = await rt.services.accounts.create(name)
            op = Principal.operator(acct.id)
            key, self.secret[name] = await rt.services.keys.create(op, name="k", scopes=list(SCOPES))
            conn = await rt.services.connections.link(
                acct.id, platform="loopback", display_name="L", external_account_id="e"
            )
            _, asset, _ = await rt.services.media.initiate_upload(
                op, name="a", content_type="application/octet-stream", size_bytes=1
            )
            self.fixed[name] = {"key": key.id, "connection": conn.id, "asset": asset.id}

    def teardown(self) -> None:
        self._done.set()
        self.run(self._holder)
        self.loop.close()

    def call(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.secret[who]}"}
        r: httpx.Response = self.run(self.client.request(method, path, json=body, headers=headers))
        assert r.status_code < 500, r.text
        other = next(a for a in ACCOUNTS if a != who)
        # nothing of the other account ever appears in a response
        for oid in [*self.owned[other], *self.fixed[other].values()]:
            if oid not in path:
                assert oid not in r.text
        return r

    def owner(self, studio_id: str) -> str:
        return next(a for a in ACCOUNTS if studio_id in self.owned[a])

    @initialize(target=studios, who=st.sampled_from(ACCOUNTS), name=names)
    def first_studio(self, who: str, name: str) -> str:
        return self.create_studio(who, name)

    @rule(target=studios, who=st.sampled_from(ACCOUNTS), name=names)
    def create_studio(self, who: str, name: str) -> str:
        r = self.call(who, "POST", "/v1/studios", {"name": name})
        assert r.status_code == 201
        sid: str = r.json()["id"]
        self.owned[who][sid] = name
        return sid

    @rule(who=st.sampled_from(ACCOUNTS), sid=studios, name=names)
    def rename(self, who: str, sid: str, name: str) -> None:
        r = self.call(who, "PATCH", f"/v1/studios/{sid}", {"name": name})
        if sid in self.owned[who]:
            assert r.status_code == 200
            self.owned[who][sid] = name
        else:
            assert r.status_code == 404

    @rule(who=st.sampled_from(ACCOUNTS), sid=consumes(studios))
    def delete(self, who: str, sid: str) -> None:
        r = self.call(who, "DELETE", f"/v1/studios/{sid}")
        if sid in self.owned[who]:
            if sid in self.live:
                assert r.status_code == 409
            else:
                assert r.status_code == 204
                del self.owned[who][sid]
        else:
            assert r.status_code == 404

    @rule(who=st.sampled_from(ACCOUNTS), sid=studios, action=st.sampled_from(["go-live", "go-offline"]))
    def stream(self, who: str, sid: str, action: str) -> None:
        r = self.call(who, "POST", f"/v1/studios/{sid}/{action}")
        if sid not in self.owned[who]:
            assert r.status_code == 404
            return
        assert r.status_code in (200, 202)
        (self.live.add if action == "go-live" else self.live.discard)(sid)

    @rule(
        who=st.sampled_from(ACCOUNTS),
        sid=studios,
        sub=st.sampled_from(["", "/stream-status", "/sources", "/destinations", "/chat/messages"]),
        method=st.sampled_from(["GET", "POST"]),
    )
    def touch_child(self, who: str, sid: str, sub: str, method: str) -> None:
        bodies = {
            "/sources": {"name": "s", "kind": "srt"},
            "/destinations": {
                "name": "d",
                "platform": "custom_rtmp",
                "rtmpUrl": "rtmp://h.example/a",
                "streamKey": "k1",
            },
            "/chat/messages": {"text": "hi"},
        }
        if method == "POST" and sub not in bodies:
            method = "GET"
        r = self.call(who, method, f"/v1/studios/{sid}{sub}", bodies.get(sub) if method == "POST" else None)
        if sid in self.owned[who]:
            assert r.status_code in (200, 201)
        else:
            assert r.status_code == 404

    @rule(who=st.sampled_from(ACCOUNTS), kind=st.sampled_from(["key", "connection", "asset"]), delete=st.booleans())
    def other_fixed(self, who: str, kind: str, delete: bool) -> None:
        other = next(a for a in ACCOUNTS if a != who)
        oid = self.fixed[other][kind]
        base = {"key": "/v1/keys/", "connection": "/v1/connections/", "asset": "/v1/media/"}[kind]
        if kind == "key" and not delete:
            r = self.call(who, "POST", f"{base}{oid}/rotate")
        else:
            r = self.call(who, "DELETE" if delete else "GET", base + oid)
        assert r.status_code == 404

    @invariant()
    def each_account_sees_exactly_its_own(self) -> None:
        for who in ACCOUNTS:
            seen: dict[str, str] = {}
            cursor = ""
            while True:
                r = self.call(who, "GET", f"/v1/studios?limit=7&cursor={cursor}")
                page = r.json()
                seen.update({s["id"]: s["name"] for s in page["data"]})
                if "nextCursor" not in page:
                    break
                cursor = page["nextCursor"]
            assert seen == self.owned[who]
            r = self.call(who, "GET", f"/v1/connections/{self.fixed[who]['connection']}")
            assert r.status_code == 200
            r = self.call(who, "GET", f"/v1/media/{self.fixed[who]['asset']}")
            assert r.status_code == 200


TwoTenants.TestCase.settings = settings(
    max_examples=10, stateful_step_count=12, deadline=None, suppress_health_check=list(HealthCheck)
)
test_two_tenants = pytest.mark.filterwarnings("ignore::DeprecationWarning")(TwoTenants.TestCase)
