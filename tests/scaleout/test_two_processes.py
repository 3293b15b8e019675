"""Two real ``trax serve`` processes sharing one PostgreSQL and one Redis behave as one service."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scaleout.conftest import scaleout_config
from tests.support.server import ServerProcess
from trax.domain.keys import RateLimitOverride
from trax.runtime import Runtime
from trax.services import Principal
from trax.settings import load_settings
from trax.testing.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.slow

RECORDER = Path(__file__).with_name("event_recorder_plugin.py")
ALL = ["studios:read", "studios:write", "stream:read", "stream:write"]


def provision(config: dict[str, Any], *, rate_limit: RateLimitOverride | None = None) -> str:
    """An account and a key in the shared database, made in-process; returns the key's secret."""

    async def run() -> str:
        settings = load_settings(None, **{k: v for k, v in config.items() if k != "plugins"})
        async with Runtime(settings) as rt:
            acct = await rt.services.accounts.create(f"acme-{time.monotonic_ns()}")
            _, secret = await rt.services.keys.create(
                Principal.operator(acct.id), name="scaleout", scopes=ALL, rate_limit=rate_limit
            )
            return secret

    return asyncio.run(run())


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class Pair:
    def __init__(self, tmp: Path, pg: PostgresServer, redis: RedisServer) -> None:
        base = scaleout_config(tmp, pg, redis)
        ns = base["storage"]["options"]["schema"]
        self.configs = []
        self.servers = []
        for name in ("a", "b"):
            cfg = scaleout_config(tmp, pg, redis, namespace=ns, plugins={"paths": [str(RECORDER)]})
            self.configs.append(cfg)
            log = tmp / f"events-{name}.jsonl"
            log.touch()
            self.servers.append(ServerProcess(cfg, tmp, env={"TRAX_TEST_EVENT_LOG": str(log)}))
        self.event_logs = [tmp / "events-a.jsonl", tmp / "events-b.jsonl"]

    def start(self) -> Pair:
        # the first one migrates the schema; then both serve
        self.servers[0].start(timeout=60)
        self.servers[1].start(timeout=60)
        return self

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, redis_server: RedisServer
) -> Iterator[Pair]:
    p = Pair(tmp_path_factory.mktemp("pair"), postgres, redis_server)
    try:
        yield p.start()
    finally:
        p.stop()


def test_one_rate_limit_across_both_processes(pair: Pair) -> None:
    capacity, rate = 20, 1.0
    secret = provision(pair.configs[0], rate_limit=RateLimitOverride(capacity=capacity, refill_per_second=rate))
    urls = [s.base_url + "/v1/studios" for s in pair.servers]
    total, workers = 240, 8
    clients = [httpx.Client(timeout=30, headers=auth(secret)) for _ in range(workers)]

    def hit(w: int) -> list[int]:
        # worker w sends every workers-th request, alternating between the two processes
        return [clients[w].get(urls[i % 2]).status_code for i in range(w, total, workers)]

    try:
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            per_worker = list(pool.map(hit, range(workers)))
        elapsed = time.monotonic() - start
    finally:
        for c in clients:
            c.close()
    codes = [code for w in range(workers) for code in per_worker[w]]
    granted = codes.count(200)
    assert set(codes) <= {200, 429}
    assert granted >= capacity
    assert granted <= capacity + rate * elapsed, (granted, elapsed)
    assert codes.count(429) > 0
    # workers is even, so worker w always talks to process w % 2: both processes granted some,
    # and the bound above held for their sum
    for proc in (0, 1):
        assert any(c == 200 for w in range(proc, workers, 2) for c in per_worker[w])


def test_created_through_one_listed_paged_and_deleted_through_the_other(pair: Pair) -> None:
    a, b = pair.servers
    h = auth(provision(pair.configs[0]))
    with httpx.Client(timeout=30) as c:
        made = []
        for i in range(7):
            server = a if i % 2 == 0 else b
            r = c.post(server.base_url + "/v1/studios", json={"name": f"s{i}"}, headers=h)
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
        seen: list[str] = []
        cursor = None
        for page_no in range(10):
            server = b if page_no % 2 == 0 else a  # pages alternate processes too
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            r = c.get(server.base_url + "/v1/studios", params=params, headers=h)
            assert r.status_code == 200, r.text
            body = r.json()
            seen += [s["id"] for s in body["data"]]
            cursor = body.get("nextCursor")
            if not cursor:
                break
        assert seen == made
        for sid in made[0::2]:  # made through a, deleted through b
            assert c.delete(f"{b.base_url}/v1/studios/{sid}", headers=h).status_code == 204
        for sid in made[0::2]:
            assert c.get(f"{a.base_url}/v1/studios/{sid}", headers=h).status_code == 404
        left = c.get(a.base_url + "/v1/studios", headers=h).json()["data"]
        assert [s["id"] for s in left] == made[1::2]


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_an_event_raised_in_one_reaches_the_other(pair: Pair) -> None:
    a = pair.servers[0]
    h = auth(provision(pair.configs[0]))
    with httpx.Client(timeout=30) as c:
        studio = c.post(a.base_url + "/v1/studios", json={"name": "live"}, headers=h).json()
        r = c.post(f"{a.base_url}/v1/studios/{studio['id']}/go-live", headers=h)
        assert r.status_code in (200, 202), r.text

    def live_events(path: Path) -> list[dict[str, Any]]:
        return [e for e in _events(path) if e["type"] == "stream.live" and e["data"].get("studio_id") == studio["id"]]

    deadline = time.monotonic() + 20
    while not live_events(pair.event_logs[1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    remote = live_events(pair.event_logs[1])
    local = live_events(pair.event_logs[0])
    assert len(remote) == 1, "process b never saw the event raised in process a"
    assert len(local) == 1 and local[0]["id"] == remote[0]["id"]


def test_kill9_of_one_process_loses_no_acknowledged_write(
    tmp_path: Path, postgres: PostgresServer, redis_server: RedisServer
) -> None:
    p = Pair(tmp_path, postgres, redis_server).start()
    try:
        a, b = p.servers
        h = auth(provision(p.configs[0]))
        acked: list[str] = []
        stop_at = 120

        def write(i: int) -> str | None:
            server = a if i % 2 == 0 else b
            try:
                with httpx.Client(timeout=15) as c:
                    r = c.post(server.base_url + "/v1/studios", json={"name": f"w{i}"}, headers=h)
            except httpx.TransportError:
                return None  # the killed process: no answer, so no promise
            if r.status_code == 201:
                return str(r.json()["id"])
            assert r.status_code < 500 or r.status_code == 503, r.text
            return None

        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(write, i) for i in range(stop_at)]
            # kill a once the stream is well under way
            deadline = time.monotonic() + 60
            while sum(f.done() for f in futures) < stop_at // 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            a.kill9()
            acked = [i for f in futures if (i := f.result()) is not None]
        assert len(acked) >= stop_at // 3
        with httpx.Client(timeout=30) as c:
            stored: list[str] = []
            cursor = None
            for _ in range(50):
                params: dict[str, Any] = {"limit": 200}
                if cursor:
                    params["cursor"] = cursor
                body = c.get(b.base_url + "/v1/studios", params=params, headers=h).json()
                stored += [s["id"] for s in body["data"]]
                cursor = body.get("nextCursor")
                if not cursor:
                    break
            missing = set(acked) - set(stored)
            assert not missing, f"{len(missing)} acknowledged writes lost"
            # the survivor keeps serving writes and reads
            r = c.post(b.base_url + "/v1/studios", json={"name": "after"}, headers=h)
            assert r.status_code == 201
            assert c.get(f"{b.base_url}/v1/studios/{r.json()['id']}", headers=h).status_code == 200
    finally:
        p.stop()
