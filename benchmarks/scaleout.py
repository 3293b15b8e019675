"""Scale-out benchmark: ``GET /v1/studios`` throughput, side by side.

    .venv/bin/python benchmarks/scaleout.py                 # 10 s per deployment
    .venv/bin/python benchmarks/scaleout.py --seconds 20 --connections 32 --json

Three deployments, each a real ``trax serve`` (or two) on 127.0.0.1:

* ``sqlite+memory x1``: the embedded defaults (SQLite storage, in-process bucket and bus);
* ``postgres+redis x1``: one process on a throwaway PostgreSQL and Redis;
* ``postgres+redis x2``: two processes sharing them, each given half the connections.

The load is ``wrk`` (Debian package ``wrk``): one key with a bucket too large to ever refuse, 20
studios in its account, so each request is an authenticated page of 20 (key lookup + rate-limit
decision + one keyset query). Printed per deployment: requests per second (summed over processes),
latency percentiles as wrk reports them (the slower process's), and non-2xx answers (must be 0).
PostgreSQL, Redis, the server processes and wrk all share this machine's cores, so the figures
compare deployments on one box; they do not predict a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from measure import parse_wrk, stop_group

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trax.domain.keys import RateLimitOverride  # noqa: E402
from trax.ports import free_port  # noqa: E402
from trax.runtime import Runtime  # noqa: E402
from trax.services import Principal  # noqa: E402
from trax.settings import load_settings  # noqa: E402
from trax.testing.servers import PostgresServer, RedisServer  # noqa: E402

SECRET = "benchmark-secret-" + "b" * 40


@dataclass
class Result:
    deployment: str
    processes: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


def sqlite_config(tmp: Path) -> dict[str, Any]:
    return {
        "storage": {"backend": "sqlite", "options": {"path": str(tmp / "trax.db")}},
        "limits": {"backend": "memory", "options": {"capacity": 120, "refill_per_second": 20}},
        "events": {"backend": "memory"},
        "blobs": {"backend": "filesystem", "options": {"root": str(tmp / "blobs")}},
        "public_api": {"write_enabled": True},
        "security": {"secret_key": SECRET},
    }


def scaleout_config(tmp: Path, pg: PostgresServer, redis: RedisServer, ns: str) -> dict[str, Any]:
    return {
        "storage": {"backend": "postgres", "options": {"dsn": pg.dsn, "schema": ns, "max_size": 10}},
        "limits": {
            "backend": "redis",
            "options": {"url": redis.url, "prefix": f"{ns}:rl:", "capacity": 120, "refill_per_second": 20},
        },
        "events": {"backend": "redis", "options": {"url": redis.url, "channel": f"{ns}:events"}},
        "blobs": {"backend": "filesystem", "options": {"root": str(tmp / "blobs")}},
        "public_api": {"write_enabled": True},
        "security": {"secret_key": SECRET},
    }


def seed(config: dict[str, Any], studios: int) -> str:
    """An account with ``studios`` studios and a key that is never limited; returns its secret."""

    async def run() -> str:
        async with Runtime(load_settings(None, **config)) as rt:
            acct = await rt.services.accounts.create("bench")
            op = Principal.operator(acct.id)
            for i in range(studios):
                await rt.services.studios.create(op, name=f"studio {i}")
            _, secret = await rt.services.keys.create(
                op,
                name="bench",
                scopes=["studios:read"],
                rate_limit=RateLimitOverride(capacity=10_000_000, refill_per_second=10_000_000),
            )
            return secret

    return asyncio.run(run())


class Serve:
    def __init__(self, config: dict[str, Any], tmp: Path, name: str) -> None:
        self.port = free_port()
        cfg = {**config, "server": {"host": "127.0.0.1", "port": self.port}, "log_level": "warning"}
        self.path = tmp / f"{name}.yaml"
        self.path.write_text(yaml.safe_dump(cfg))
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Serve:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trax.cli", "serve", str(self.path)],
                cwd=self.path.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"trax serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("trax serve did not come up")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)


def _wrk(connections: int, secret: str) -> list[str]:
    return ["wrk", "-t1", f"-c{connections}", "-H", f"Authorization: Bearer {secret}"]


def load(ports: list[int], secret: str, seconds: int, connections: int) -> list[dict[str, float]]:
    """One wrk per process, all at once, the connections split between them."""
    per = max(1, connections // len(ports))
    # warm-up: pools filled, statements prepared
    for port in ports:
        subprocess.run(
            [*_wrk(per, secret), "-d2s", f"http://127.0.0.1:{port}/v1/studios"], capture_output=True, timeout=60
        )
    procs = [
        subprocess.Popen(
            [*_wrk(per, secret), f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/v1/studios"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for port in ports
    ]
    return [parse_wrk(p.communicate(timeout=seconds + 60)[0]) for p in procs]


def run_deployment(name: str, config: dict[str, Any], processes: int, tmp: Path, args: argparse.Namespace) -> Result:
    secret = seed(config, 20)
    servers = [Serve(config, tmp, f"{name.replace('+', '-')}-{i}") for i in range(processes)]
    try:
        for s in servers:
            s.start()
        parts = load([s.port for s in servers], secret, args.seconds, args.connections)
    finally:
        for s in servers:
            s.stop()
    return Result(
        deployment=name,
        processes=processes,
        rps=round(sum(p["rps"] for p in parts), 1),
        p50_ms=round(max(p["p50"] for p in parts), 2),
        p99_ms=round(max(p["p99"] for p in parts), 2),
        non_2xx=int(sum(p["non_2xx"] for p in parts)),
        errors=int(sum(p["errors"] for p in parts)),
    )


async def _time_calls(store: Any, some_id: str, ids: Any, n: int) -> list[float]:
    from trax.domain.base import utcnow
    from trax.domain.studios import Studio
    from trax.interfaces import Insert

    def fresh() -> Any:
        now = utcnow()
        return Insert(Studio(id=ids.new("studio"), account_id="b", created_at=now, updated_at=now, name="w"))

    timings = []
    for call in (
        lambda: store.get(Studio, "a", some_id),
        lambda: store.list(Studio, "a", limit=21),
        lambda: store.apply([fresh()]),
    ):
        t = time.perf_counter()
        for _ in range(n):
            await call()
        timings.append((time.perf_counter() - t) / n * 1e6)
    return timings


async def _micro(pg: PostgresServer, redis: RedisServer, tmp: Path, n: int) -> list[tuple[str, float, float, float]]:
    """Sequential per-call cost, in-process: where the time of one request goes on each backend."""
    from trax_postgres import PostgresOptions, PostgresStorage
    from trax_redis import RedisLimiterOptions, RedisRateLimiter

    from trax.domain.base import utcnow
    from trax.domain.ids import IdGenerator
    from trax.domain.studios import Studio
    from trax.interfaces import Insert
    from trax.plugins.memory_limits import MemoryRateLimiter, TokenBucket
    from trax.plugins.sqlite_storage import SqliteOptions, SqliteStorage

    ids = IdGenerator()
    out: list[tuple[str, float, float, float]] = []
    stores: list[tuple[str, Any]] = [
        ("sqlite", SqliteStorage(SqliteOptions(path=tmp / "micro.db"))),
        ("postgres", PostgresStorage(PostgresOptions(dsn=pg.dsn, schema="micro"))),  # type: ignore[arg-type]
    ]
    for name, store in stores:
        await store.open()
        now = utcnow()
        rows = [
            Studio(id=ids.new("studio"), account_id="a", created_at=now, updated_at=now, name="s") for _ in range(20)
        ]
        await store.apply([Insert(r) for r in rows])
        timings = await _time_calls(store, rows[3].id, ids, n)
        await store.close()
        out.append((f"{name} get / list(20) / apply(1)", *timings))
    limiters: list[tuple[str, Any]] = [
        ("memory", MemoryRateLimiter(TokenBucket())),
        ("redis", RedisRateLimiter(RedisLimiterOptions(url=redis.url, prefix="micro:"))),  # type: ignore[arg-type]
    ]
    for name, lim in limiters:
        await lim.open()
        t = time.perf_counter()
        for _ in range(n):
            await lim.acquire("k", capacity=10**9, refill_per_second=10**9)
        out.append((f"{name} limiter acquire", (time.perf_counter() - t) / n * 1e6, float("nan"), float("nan")))
        await lim.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--micro", type=int, default=2000, help="calls per in-process measurement (0: skip)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    results: list[Result] = []
    micro: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="trax-bench-scaleout-") as d:
        tmp = Path(d)
        (tmp / "sqlite").mkdir()
        results.append(run_deployment("sqlite+memory", sqlite_config(tmp / "sqlite"), 1, tmp / "sqlite", args))
        with PostgresServer() as pg, RedisServer() as redis:
            for n in (1, 2):
                sub = tmp / f"pg{n}"
                sub.mkdir()
                cfg = scaleout_config(sub, pg, redis, f"bench{n}")
                results.append(run_deployment("postgres+redis", cfg, n, sub, args))
            if args.micro:
                micro = asyncio.run(_micro(pg, redis, tmp, args.micro))
    load_avg = os.getloadavg()[0]
    if args.json:
        doc = {"results": [asdict(r) for r in results], "micro_us": micro, "load_avg_1m": load_avg}
        print(json.dumps(doc, indent=2))
        return
    print(f"GET /v1/studios (page of 20), wrk {args.connections} connections, {args.seconds} s each")
    print(f"{'deployment':<18}{'procs':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'errors':>8}")
    for r in results:
        print(
            f"{r.deployment:<18}{r.processes:>6}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.non_2xx:>9}{r.errors:>8}"
        )
    if micro:
        print("\nin-process, sequential, microseconds per call")
        for label, *us in micro:
            print(f"  {label:<36}" + " / ".join(f"{u:.0f}" for u in us if u == u))
    print(f"load average (1 min) at the end: {load_avg:.1f}")


if __name__ == "__main__":
    main()
