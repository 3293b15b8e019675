"""End to end through ``trax serve``: a /v1 session token, a WHIP publish, and /v1 stream-status following it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.ingest.whip_support import wait_for
from tests.support.server import ServerProcess, dev_config
from trax.ingest.whip.client import PatternTrack, WhepPlayer, WhipPublisher
from trax.ingest.whip.ice import HostCandidates
from trax.ports import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SCOPES = ("studios:write", "studios:read", "sources:write", "sources:read", "stream:read")


@pytest.fixture
async def loopback_ice() -> AsyncIterator[None]:
    """This process's aiortc clients offer 127.0.0.1 candidates, like the server's."""
    candidates = HostCandidates(["127.0.0.1"])
    candidates.install()
    yield
    candidates.uninstall()


async def test_session_token_publish_and_stream_status(tmp_path: Path, loopback_ice: None) -> None:
    whip_port = free_port()
    config = dev_config(
        tmp_path,
        ingest={
            "whip": {"enabled": True, "port": whip_port, "host_candidates": ["127.0.0.1"]},
            "idle_timeout_seconds": 2,
        },
    )
    with ServerProcess(config, tmp_path) as server:
        server.cli_json("accounts", "create", "acme")
        scopes = [a for s in SCOPES for a in ("--scope", s)]
        key = server.cli_json("keys", "create", "--account", "acme", "--name", "ingest", *scopes)["secret"]
        api = httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        async with api:
            studio = (await api.post("/v1/studios", json={"name": "Show"})).json()
            resp = await api.post(f"/v1/studios/{studio['id']}/sources", json={"name": "cam", "kind": "whip"})
            assert resp.status_code == 201, resp.text
            source = resp.json()
            path = source["ingest"]["path"]
            resp = await api.post(f"/v1/studios/{studio['id']}/sources/{source['id']}/session-tokens", json={})
            assert resp.status_code == 201, resp.text
            creds = resp.json()
            whip_url = creds["urls"]["whip"]
            assert whip_url.startswith(f"http://127.0.0.1:{whip_port}/{path}/whip?access_token=")

            # the token verifies with the JWKS the API host publishes
            jwks = (await api.get("/.well-known/jwks.json")).json()
            kid = jwt.get_unverified_header(creds["token"])["kid"]
            claims = jwt.decode(
                creds["token"], jwt.PyJWKSet.from_dict(jwks)[kid].key, algorithms=["ES256"], audience="trax-talk"
            )
            assert claims["path"] == path and claims["action"] == "publish"

            async def source_status() -> Any:
                body = (await api.get(f"/v1/studios/{studio['id']}/stream-status")).json()
                return {s["id"]: s["status"] for s in body["sources"]}[source["id"]]

            assert await source_status() == "idle"
            publisher = WhipPublisher(whip_url, "", PatternTrack(320, 240, 30))
            await publisher.start()
            try:

                async def live() -> bool:
                    return await source_status() == "live"

                await wait_for(live, within=30, step=0.2)
                read = (
                    await api.post(
                        f"/v1/studios/{studio['id']}/sources/{source['id']}/session-tokens", json={"action": "read"}
                    )
                ).json()
                async with WhepPlayer(read["urls"]["whep"], "") as viewer:
                    await wait_for(lambda: viewer.frames["video"] >= 30, within=30)
            finally:
                publisher.token = creds["token"]
                await publisher.close()  # DELETE on the session resource

            async def idle() -> bool:
                return await source_status() == "idle"

            await wait_for(idle, within=15, step=0.2)
            got = (await api.get(f"/v1/studios/{studio['id']}/sources/{source['id']}")).json()
            assert got["status"] == "idle"
