"""Two ``trax serve`` processes on one PostgreSQL: deleting a studio through one while the other
creates its children leaves no orphan, and every loser is a 404 or 409 envelope."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.server import ServerProcess
from trax.domain.keys import RateLimitOverride
from trax.domain.scopes import SCOPES
from trax.ports import free_port
from trax.runtime import Runtime
from trax.services import Principal
from trax.settings import load_settings
from trax.testing.servers import PostgresServer

pytestmark = pytest.mark.slow

ROUNDS = 20
CHILD_POSTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("sources", {"name": "cam", "kind": "srt"}),
    ("chat/messages", {"text": "hi"}),
    ("sources", {"name": "mic", "kind": "rtmp"}),
    ("destinations", {"name": "out", "platform": "custom_rtmp", "rtmpUrl": "rtmp://127.0.0.1/live", "streamKey": "k"}),
)


def _config(tmp: Path, pg: PostgresServer, schema: str) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": free_port()},
        "storage": {"backend": "postgres", "options": {"dsn": pg.dsn, "schema": schema, "timeout": 5.0}},
        "blobs": {"backend": "filesystem", "options": {"root": str(tmp / "blobs")}},
        "public_api": {"write_enabled": True},
        "security": {"secret_key": "orphan-test-secret-" + "o" * 40},
        "platforms": {"loopback": {}},
    }


def _provision(config: dict[str, Any]) -> str:
    async def run() -> str:
        async with Runtime(load_settings(None, **config)) as rt:
            acct = await rt.services.accounts.create(f"racer-{uuid.uuid4().hex[:8]}")
            _, secret = await rt.services.keys.create(
                Principal.operator(acct.id),
                name="race",
                scopes=list(SCOPES),
                rate_limit=RateLimitOverride(capacity=100_000, refill_per_second=100_000),
            )
            return secret

    return asyncio.run(run())


def _orphans(dsn: str, schema: str) -> list[str]:
    async def run() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                f'SELECT c.id FROM "{schema}".trax_entities c WHERE c.parent_id IS NOT NULL AND NOT EXISTS'
                f' (SELECT 1 FROM "{schema}".trax_entities p WHERE p.account_id=c.account_id AND p.id=c.parent_id)'
            )
        finally:
            await conn.close()
        return [r[0] for r in rows]

    return asyncio.run(run())


@pytest.fixture
def pair(tmp_path: Path, postgres: PostgresServer) -> Iterator[tuple[list[ServerProcess], dict[str, Any]]]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    configs = [_config(tmp_path, postgres, schema) for _ in range(2)]
    servers = [ServerProcess(c, tmp_path) for c in configs]
    try:
        for s in servers:  # the first migrates the schema; the second finds it current
            s.start(timeout=60)
        yield servers, configs[0]
    finally:
        for s in servers:
            s.stop()


def test_delete_through_one_process_racing_creates_through_the_other(
    pair: tuple[list[ServerProcess], dict[str, Any]], postgres: PostgresServer
) -> None:
    (a, b), config = pair
    schema = config["storage"]["options"]["schema"]
    h = {"Authorization": f"Bearer {_provision(config)}"}
    seen: Counter[str] = Counter()
    workers = len(CHILD_POSTS) + 1
    clients = [httpx.Client(timeout=30, headers=h) for _ in range(workers)]

    def check(resp: httpx.Response) -> None:
        method = resp.request.method
        seen[f"{method} {resp.status_code}"] += 1
        expected = {"DELETE": {204: None, 409: "conflict"}, "POST": {201: None, 404: "not_found"}}[method]
        assert resp.status_code in expected, resp.text
        if expected[resp.status_code] is not None:
            err = resp.json()["error"]
            assert err["code"] == expected[resp.status_code] and err["message"]
            assert err["requestId"] == resp.headers["x-request-id"]

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for n in range(ROUNDS):
                r = clients[0].post(a.base_url + "/v1/studios", json={"name": f"s{n}"})
                assert r.status_code == 201, r.text
                studio = f"/v1/studios/{r.json()['id']}"

                first_child = threading.Event()

                def create(i: int, studio: str = studio, first_child: threading.Event = first_child) -> None:
                    # a few in a row, so the delete's listing and its commit have creates around them
                    path, body = CHILD_POSTS[i - 1]
                    for _ in range(4):
                        resp = clients[i].post(f"{b.base_url}{studio}/{path}", json=body)
                        check(resp)
                        if resp.status_code == 404:
                            return
                        first_child.set()

                def delete(studio: str = studio, first_child: threading.Event = first_child) -> None:
                    first_child.wait(30)
                    for _ in range(50):  # a 409 is retried at once, as a client would
                        resp = clients[0].delete(a.base_url + studio)
                        check(resp)
                        if resp.status_code == 204:
                            return
                    pytest.fail("the delete never won")

                jobs = [pool.submit(delete), *(pool.submit(create, i) for i in range(1, workers))]
                for job in jobs:
                    job.result(timeout=120)
                assert clients[0].get(b.base_url + studio).status_code == 404
    finally:
        for c in clients:
            c.close()
    assert _orphans(postgres.dsn, schema) == []
    assert seen["DELETE 204"] == ROUNDS
    print(dict(seen))
