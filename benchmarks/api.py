"""GET /v1/studios?limit=50 on ``trax serve`` vs a bare Litestar handler with the same JSON.

Both servers run under uvicorn (one worker, uvloop + httptools) pinned to CPU 0
when ``taskset`` exists; the load generator (wrk, else an httpx loader) runs
pinned to CPU 1. The trax side is the real deployment path: SQLite storage, an
API key looked up per request, the memory token bucket consulted per request
(a bucket big enough never to refuse), request ids, the envelope handler.
Rounds alternate trax, bare and a mixed trax load where every ``--write-every``-th
request is a PATCH of one studio (invalidating every cache); medians are reported.
Each round also reads the server's own CPU time around the measured wrk run, so
the CPU spent per answer is printed beside req/s: it moves less with the rest of
the machine's load, and it is how a per-request change should be judged (a
tight-loop timing hides cache effects a busy server pays; benchmarks/README.md).

    .venv/bin/python benchmarks/api.py [--seconds 10] [--connections 64] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from measure import cpu_seconds, memory_kib, parse_wrk, stop_group  # noqa: E402

from trax.ports import free_port  # noqa: E402

PIN = os.environ.get("TRAX_BENCH_PIN", "1") != "0"


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(cpu), *cmd] if PIN and taskset and (os.cpu_count() or 1) > 1 else cmd


def rss_mib(pid: int) -> float:
    return memory_kib(pid)[0] / 1024


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in {timeout}s")


# --- the bare comparison server ------------------------------------------------------


def serve_bare(port: int, body_file: str) -> None:
    """A bare Litestar app: one async handler returning the decoded JSON from memory."""
    import uvicorn
    from litestar import Litestar, get

    data = json.loads(Path(body_file).read_bytes())

    @get("/v1/studios")
    async def studios() -> dict[str, Any]:
        return data  # type: ignore[no-any-return]

    app = Litestar([studios])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, server_header=False)


# --- load ----------------------------------------------------------------------------


WRITES_LUA = """
local n = 0
request = function()
  n = n + 1
  if n % EVERY == 0 then
    -- a headers table replaces wrk.headers (the -H credential), so copy them
    local h = {["Content-Type"] = "application/json"}
    for k, v in pairs(wrk.headers) do h[k] = v end
    return wrk.format("PATCH", "PATCH_PATH", h, '{"name":"renamed ' .. n .. '"}')
  end
  return wrk.format("GET")
end
"""


def writes_script(directory: Path, every: int, patch_path: str) -> Path:
    """A wrk script: every ``every``-th request is a PATCH of one studio (invalidating every cache)."""
    path = directory / "writes.lua"
    path.write_text(WRITES_LUA.replace("EVERY", str(every)).replace("PATCH_PATH", patch_path))
    return path


def run_wrk(
    url: str, headers: dict[str, str], seconds: int, connections: int, script: Path | None = None, pid: int = 0
) -> dict[str, Any]:
    hdr = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    base = ["wrk", "-t1", f"-c{connections}", "--latency", *hdr, *(["-s", str(script)] if script else []), url]
    subprocess.run(pinned(1, [*base[:3], "-d2s", *base[3:]]), capture_output=True, timeout=60, check=True)
    cpu = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        pinned(1, [*base[:3], f"-d{seconds}s", *base[3:]]), capture_output=True, text=True, timeout=seconds + 60
    ).stdout
    cpu = cpu_seconds(pid) - cpu if pid else float("nan")
    w = parse_wrk(out)
    return {
        "rps": w["rps"],
        "p50_ms": w["p50"],
        "p99_ms": w["p99"],
        "non2xx": w["non_2xx"],
        "socket_errors": w["errors"],
        # the server's own CPU per answer: steadier than req/s on a shared box, and what a change costs
        "server_cpu_us": cpu / w["requests"] * 1e6 if w["requests"] else float("nan"),
        "tool": "wrk",
    }


async def _httpx_load(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    bad = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal bad
            while time.perf_counter() < end:
                t = time.perf_counter()
                r = await client.get(url)
                latencies.append((time.perf_counter() - t) * 1000)
                bad += r.status_code >= 300

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        took = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {"rps": len(latencies) / took, "p50_ms": q[49], "p99_ms": q[98], "non2xx": bad, "tool": "httpx"}


def run_load(url: str, headers: dict[str, str], seconds: int, connections: int, pid: int = 0) -> dict[str, Any]:
    if shutil.which("wrk"):
        return run_wrk(url, headers, seconds, connections, pid=pid)
    asyncio.run(_httpx_load(url, headers, 2, connections))
    return asyncio.run(_httpx_load(url, headers, seconds, connections))


# --- in-process: raw ASGI calls, no network --------------------------------------------


class _Collect:
    """An ASGI ``send`` that keeps the status and body."""

    def __init__(self) -> None:
        self.status = 0
        self.body = bytearray()

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def _http_scope(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app: Any, scope: dict[str, Any]) -> _Collect:
    out = _Collect()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await app(dict(scope), receive, out)
    return out


async def in_process(config_path: Path, secret: str, rounds: int, n: int) -> dict[str, Any]:
    """µs per request through the trax app and a bare handler, alternating ``rounds`` x ``n`` calls."""
    from litestar import Litestar, get

    from trax.runtime import Runtime
    from trax.server.app import create_app
    from trax.settings import load_settings

    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {secret}".encode())]
    scope = _http_scope("/v1/studios", b"limit=50", headers)
    app = create_app(Runtime(load_settings(config_path)))
    async with app.lifespan():
        first = await _call(app, scope)
        assert first.status == 200, bytes(first.body)
        data = json.loads(bytes(first.body))

        @get("/v1/studios")
        async def studios() -> dict[str, Any]:
            return data  # type: ignore[no-any-return]

        bare = Litestar([studios])
        bare_scope = _http_scope("/v1/studios", b"limit=50", [(b"host", b"127.0.0.1")])
        timings: dict[str, list[float]] = {"trax": [], "bare": []}
        for _ in range(rounds):
            for name, target, sc in (("trax", app, scope), ("bare", bare, bare_scope)):
                t = time.perf_counter()
                for _ in range(n):
                    await _call(target, sc)
                timings[name].append((time.perf_counter() - t) / n * 1e6)
    return {name: min(v) for name, v in timings.items()}


# --- the run -------------------------------------------------------------------------


async def seed(config_path: Path, studios: int) -> str:
    from trax.domain.keys import RateLimitOverride
    from trax.runtime import Runtime
    from trax.services import Principal
    from trax.settings import load_settings

    async with Runtime(load_settings(config_path)) as rt:
        acct = await rt.services.accounts.create("bench")
        op = Principal.operator(acct.id)
        for i in range(studios):
            await rt.services.studios.create(op, name=f"Studio {i}", description="benchmark studio")
        _, secret = await rt.services.keys.create(
            op,
            name="bench",
            scopes=["studios:read", "studios:write"],
            rate_limit=RateLimitOverride(capacity=10**9, refill_per_second=1e9),
        )
        return secret


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--studios", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rounds", type=int, default=2, help="alternating trax/bare rounds; the median is reported")
    ap.add_argument("--write-every", type=int, default=100, help="second trax figure: a PATCH every N requests")
    ap.add_argument("--in-process", action="store_true", help="raw ASGI calls instead of wrk (µs per request)")
    ap.add_argument("--bare-serve", nargs=2, metavar=("PORT", "BODY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_serve:
        serve_bare(int(args.bare_serve[0]), args.bare_serve[1])
        return 0

    with tempfile.TemporaryDirectory(prefix="trax-api-bench-") as tmpdir:
        tmp = Path(tmpdir)
        port = free_port()
        config = {
            "server": {"host": "127.0.0.1", "port": port},
            "storage": {"backend": "sqlite", "options": {"path": str(tmp / "trax.db")}},
            "limits": {"backend": "memory", "options": {"capacity": 120, "refill_per_second": 20}},
            "blobs": {"backend": "filesystem", "options": {"root": str(tmp / "blobs")}},
            "security": {"secret_key_file": str(tmp / "secret.key")},
            "public_api": {"write_enabled": True},
            "log_level": "warning",
        }
        config_path = tmp / "trax.yaml"
        config_path.write_text(yaml.safe_dump(config))
        secret = asyncio.run(seed(config_path, args.studios))
        if args.in_process:
            us = asyncio.run(in_process(config_path, secret, 3, 1000))
            print(f"in-process: trax {us['trax']:.0f} µs/request, bare {us['bare']:.0f} µs/request")
            return 0
        headers = {"Authorization": f"Bearer {secret}"}
        url = f"http://127.0.0.1:{port}/v1/studios?limit=50"

        trax = subprocess.Popen(
            pinned(0, [sys.executable, "-m", "trax.cli", "serve", str(config_path)]),
            cwd=tmp,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bare: subprocess.Popen[bytes] | None = None
        try:
            wait_http(f"http://127.0.0.1:{port}/v1/health", trax)
            body = httpx.get(url, headers=headers, timeout=10)
            assert body.status_code == 200 and len(body.json()["data"]) == min(50, args.studios), body.text
            (tmp / "body.json").write_bytes(body.content)
            bare_port = free_port()
            bare = subprocess.Popen(
                pinned(0, [sys.executable, __file__, "--bare-serve", str(bare_port), str(tmp / "body.json")]),
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            bare_url = f"http://127.0.0.1:{bare_port}/v1/studios?limit=50"
            wait_http(bare_url, bare)
            assert httpx.get(bare_url, timeout=10).content == body.content
            idle = {"trax": rss_mib(trax.pid), "bare": rss_mib(bare.pid)}
            target = body.json()["data"][0]["id"]
            script = writes_script(tmp, args.write_every, f"/v1/studios/{target}") if args.write_every else None
            if script is not None and not shutil.which("wrk"):
                script = None  # the httpx loader has no write mix
            # rounds alternate the two servers so load from the rest of the machine hits both alike
            runs: dict[str, list[dict[str, Any]]] = {"trax": [], "bare": [], "trax_writes": []}
            for _ in range(args.rounds):
                runs["trax"].append(run_load(url, headers, args.seconds, args.connections, trax.pid))
                runs["bare"].append(run_load(bare_url, {}, args.seconds, args.connections, bare.pid))
                if script is not None:
                    runs["trax_writes"].append(
                        run_wrk(url, headers, args.seconds, args.connections, script, pid=trax.pid)
                    )
            if script is not None:
                check = httpx.get(f"http://127.0.0.1:{port}/v1/studios/{target}", headers=headers, timeout=10)
                assert check.json()["name"].startswith("renamed "), check.text  # the writes did happen
            after = {"trax": rss_mib(trax.pid), "bare": rss_mib(bare.pid)}
        finally:
            stop_group(trax, timeout=10)
            if bare is not None:
                stop_group(bare, timeout=10)

    results: dict[str, Any] = {}
    for name, rounds in runs.items():
        if rounds:
            med = sorted(rounds, key=lambda r: r["rps"])[len(rounds) // 2]
            server = "bare" if name == "bare" else "trax"
            results[name] = {
                **med,
                "rps_rounds": [r["rps"] for r in rounds],
                "rss_idle_mib": idle[server],
                "rss_after_mib": after[server],
            }
    results["ratio"] = results["trax"]["rps"] / results["bare"]["rps"]
    # the same comparison by CPU spent per answer (bare / trax): what the box could serve if only CPU counted
    results["cpu_ratio"] = results["bare"].get("server_cpu_us", float("nan")) / results["trax"].get(
        "server_cpu_us", float("nan")
    )
    results["ratio_rounds"] = [t["rps"] / b["rps"] for t, b in zip(runs["trax"], runs["bare"], strict=True)]
    if "trax_writes" in results:
        results["trax_writes"]["write_every"] = args.write_every
    results["load_avg_1m"] = os.getloadavg()[0]
    results["body_bytes"] = len(body.content)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name in ("trax", "bare"):
            r = results[name]
            print(
                f"{name:5} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
                f"non-2xx {r['non2xx']}  server CPU {r.get('server_cpu_us', float('nan')):5.1f} µs/request  "
                f"RSS idle {r['rss_idle_mib']:.0f} MiB, after {r['rss_after_mib']:.0f} MiB"
            )
        per_round = ", ".join(f"{r:.0%}" for r in results["ratio_rounds"])
        print(
            f"ratio trax/bare: {results['ratio']:.1%} (target >= 70%; rounds {per_round})  "
            f"by server CPU per request (bare/trax): {results['cpu_ratio']:.1%}  "
            f"load avg {results['load_avg_1m']:.1f}"
        )
        w = results.get("trax_writes")
        if w:
            print(
                f"trax with a PATCH every {w['write_every']} requests: {w['rps']:.0f} req/s  p50 {w['p50_ms']:.2f} ms  "
                f"p99 {w['p99_ms']:.2f} ms  non-2xx {w['non2xx']}  ratio {w['rps'] / results['bare']['rps']:.1%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
