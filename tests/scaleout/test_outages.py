"""PostgreSQL or Redis gone (stopped or frozen) while serving: 503 unavailable + Retry-After, then recovery."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.scaleout.conftest import scaleout_config
from tests.scaleout.test_two_processes import auth, provision
from tests.support.server import ServerProcess
from trax.testing.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.slow

STORAGE_TIMEOUT = 2.0
LIMITER_TIMEOUT = 1.0
# generous: the point is that an answer comes at all, not how fast
CLIENT_TIMEOUT = 20.0


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[PostgresServer, RedisServer], tuple[ServerProcess, dict[str, str]]]]:
    started: list[ServerProcess] = []

    def start(pg: PostgresServer, redis: RedisServer) -> tuple[ServerProcess, dict[str, str]]:
        config = scaleout_config(tmp_path, pg, redis)
        config["storage"]["options"].update(timeout=STORAGE_TIMEOUT, retry_after=3)
        config["limits"]["options"].update(timeout=LIMITER_TIMEOUT, retry_after=2)
        config["events"]["options"].update(timeout=LIMITER_TIMEOUT)
        headers = auth(provision(config))
        server = ServerProcess(config, tmp_path)
        started.append(server)
        return server.start(timeout=60), headers

    yield start
    for s in started:
        s.stop()


def _assert_unavailable(r: httpx.Response, retry_after: str) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "unavailable"
    assert r.headers["retry-after"] == retry_after
    assert r.headers.get("x-request-id") == r.json()["error"]["requestId"]
    for secret_bit in ("postgresql://", "redis://", "Traceback"):
        assert secret_bit not in r.text


def _assert_clean_log(server: ServerProcess) -> None:
    log = server.log()
    assert "unhandled error" not in log  # what the server logs for a 500
    assert "postgresql://" not in log and "redis://" not in log


def _until_ok(c: httpx.Client, url: str, headers: dict[str, str], within: float = 45) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        r = c.get(url, headers=headers)
        if r.status_code == 200:
            return r
        assert r.status_code == 503, r.text
        assert time.monotonic() < deadline, "service did not resume by itself"
        time.sleep(0.2)


@pytest.mark.parametrize("how", ["stop", "freeze"])
def test_postgres_outage_answers_503_then_resumes(
    how: str,
    own_postgres: PostgresServer,
    redis_server: RedisServer,
    serve: Callable[[PostgresServer, RedisServer], tuple[ServerProcess, dict[str, str]]],
) -> None:
    server, h = serve(own_postgres, redis_server)
    url = server.base_url + "/v1/studios"
    with httpx.Client(timeout=CLIENT_TIMEOUT) as c:
        made = c.post(url, json={"name": "before"}, headers=h)
        assert made.status_code == 201
        if how == "stop":
            own_postgres.stop("fast")
        else:
            own_postgres.pause()
        try:
            _assert_unavailable(c.get(url, headers=h), "3")
            _assert_unavailable(c.post(url, json={"name": "during"}, headers=h), "3")
            health = c.get(server.base_url + "/v1/health")
            assert health.status_code == 503 and health.json()["status"] == "degraded"
        finally:
            if how == "stop":
                own_postgres.start()
            else:
                own_postgres.resume()
        listed = _until_ok(c, url, h)
        assert made.json()["id"] in [s["id"] for s in listed.json()["data"]]
        assert c.post(url, json={"name": "after"}, headers=h).status_code == 201
        assert c.get(server.base_url + "/v1/health").status_code == 200
    _assert_clean_log(server)


@pytest.mark.parametrize("how", ["stop", "freeze"])
def test_redis_outage_answers_503_then_resumes(
    how: str,
    postgres: PostgresServer,
    own_redis: RedisServer,
    serve: Callable[[PostgresServer, RedisServer], tuple[ServerProcess, dict[str, str]]],
) -> None:
    server, h = serve(postgres, own_redis)
    url = server.base_url + "/v1/studios"
    with httpx.Client(timeout=CLIENT_TIMEOUT) as c:
        assert c.get(url, headers=h).status_code == 200
        if how == "stop":
            own_redis.stop()
        else:
            own_redis.pause()
        try:
            _assert_unavailable(c.get(url, headers=h), "2")
            _assert_unavailable(c.post(url, json={"name": "during"}, headers=h), "2")
        finally:
            if how == "stop":
                own_redis.start()
            else:
                own_redis.resume()
        _until_ok(c, url, h)
        assert c.post(url, json={"name": "after"}, headers=h).status_code == 201
    _assert_clean_log(server)
