"""The attack soak: legitimate streaming and API use survive slowloris, RTMP, SRT and WHEP floods at once.

A real ``trax serve`` with every ingest transport on loopback. A legitimate ffmpeg publisher streams over
RTMP, an ffmpeg reader decodes the path over RTMP (joined before the attack), and a client pages
``/v1/studios``. Then ``attacker.py`` (its own process, every socket bound to 127.0.0.2) runs every attack
at once for ``ATTACK_SECONDS``. Asserted over the attack window:

* frame loss of the legitimate stream < 1 %: frames the reader decoded with frame numbers in (n0, n1]
  over n1 - n0, where n0 and n1 are the newest frame numbers it had at the start and the end of the
  attack (the publisher's testsrc numbers every frame through its pts, and ffmpeg ``-re`` never skips
  one, so n1 - n0 is exactly what the publisher sent in between);
* the client's p99 latency < 200 ms (failed requests count with the time they took);
* the server's RSS (VmRSS) < 400 MB throughout;
* and within 50 MB of its pre-attack value within ``SETTLE_SECONDS`` of the attacker's end;
* a new viewer can join the path (decodes 15 frames) while the attack is at full strength, as it
  could just before it (that one proves the probe itself works);
* the publisher and the reader are still running at the end.

``TRAX_SOAK_ATTACKS=whep,srt`` runs only those attacks; every sample goes to ``soak.json`` in the tmp dir.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hardening.soak_support import (
    FPS,
    FrameLog,
    PagingClient,
    RssSampler,
    cpu_seconds,
    follow_framecrc,
    join_probe_cmd,
    percentile,
    process,
    publisher_cmd,
    reader_cmd,
    run_join_probe,
    vm_rss_mb,
)
from tests.support.server import ServerProcess, dev_config
from tests.support.tools import require, require_tool
from trax.domain.scopes import SCOPES
from trax.ingest.srt import libsrt
from trax.ports import free_port

ATTACKER = Path(__file__).with_name("attacker.py")
ATTACKER_SOURCE = "127.0.0.2"  # not the legitimate clients' 127.0.0.1: per-address limits must tell them apart
ATTACK_SECONDS = 45
WARMUP_FRAMES = 2 * FPS  # the reader has decoded this much before the attack starts
SETTLE_SECONDS = 15  # how long the server gets after the attack to give its memory back
JOIN_PROBE_AT = 25  # seconds into the attack: every flood has ramped up by then
JOIN_PROBE_FRAMES = 15
JOIN_PROBE_WITHIN = 15

MAX_FRAME_LOSS = 0.01
MAX_P99_SECONDS = 0.200
MAX_RSS_MB = 400
MAX_RSS_RETURN_MB = 50

# Deployment settings layered over the dev config for this test (deep-merged). The hardening settings
# (header deadlines, per-address caps, pre-auth limits, WHEP connect deadlines) go here once they exist,
# if their defaults are too long for the attack to meet them within 45 s. Names as proposed by the fixes:
#   "server": {"http": {"header_timeout_seconds": 5, "max_connections_per_address": 64}},
#   "ingest": {
#       "rtmp": {"auth_timeout": 5, "max_unauthenticated_per_address": 16, "unauthenticated_max_message_size": 16384},
#       "srt": {"max_connections_per_address": 32},
#       "whip": {"connect_timeout_seconds": 5, "max_sessions_per_credential": 10,
#                "http": {"max_connections_per_address": 64}},
#   },
# SETTLE_SECONDS must stay above ingest.whip.connect_timeout_seconds: sessions opened in the attack's last
# second are only ended that long after it.
SOAK_SETTINGS: dict[str, Any] = {
    # the dev limiter (120 / 20 a second) would throttle a client that walks pages for a minute
    "limits": {"backend": "memory", "options": {"capacity": 600, "refill_per_second": 100}},
    "ingest": {"whip": {"max_sessions": 500}},
}

# What the attacker is told to do (command-line flags of attacker.py), bounded for a shared 2-core machine.
ATTACK_PLAN: dict[str, Any] = {
    "slowloris": 2000,
    "slowloris-interval": 4,
    "rtmp": 400,
    "srt-callers": 8,
    "srt-rate": 200,
    "whep-concurrency": 4,
    "whep-rate": 20,
}


# The flags that switch each attack off; TRAX_SOAK_ATTACKS=whep,srt (say) runs only those, to tell which
# attack moves which figure.
ATTACK_SWITCHES = {"slowloris": "slowloris", "rtmp": "rtmp", "srt": "srt-callers", "whep": "whep-concurrency"}


def enabled_attacks() -> set[str]:
    wanted = os.environ.get("TRAX_SOAK_ATTACKS", "")
    chosen = {a.strip() for a in wanted.split(",") if a.strip()} or set(ATTACK_SWITCHES)
    unknown = chosen - set(ATTACK_SWITCHES)
    assert not unknown, f"TRAX_SOAK_ATTACKS: unknown {sorted(unknown)}; known {sorted(ATTACK_SWITCHES)}"
    return chosen


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def soak_config(tmp: Path) -> tuple[dict[str, Any], dict[str, int]]:
    ports = {"rtmp": free_port(), "srt": free_port(), "whep": free_port()}
    ingest = {
        "host": "127.0.0.1",
        "rtmp": {"enabled": True, "port": ports["rtmp"]},
        "srt": {"enabled": True, "port": ports["srt"]},
        "whip": {"enabled": True, "port": ports["whep"], "host_candidates": ["127.0.0.1"]},
    }
    return deep_merge(dev_config(tmp, ingest=ingest), SOAK_SETTINGS), ports


def second_loopback_address() -> bool:
    """Linux routes all of 127/8 to loopback; elsewhere (macOS) 127.0.0.2 needs an alias first."""
    with socket.socket() as probe:
        try:
            probe.bind((ATTACKER_SOURCE, 0))
        except OSError:
            return False
    return True


def test_a_second_loopback_address_reaches_a_server_on_127_0_0_1() -> None:
    """The premise of the attacker's address: a socket bound to 127.0.0.2 connects, and is seen as 127.0.0.2."""
    require(second_loopback_address(), f"{ATTACKER_SOURCE} is not a local address here")
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.bind((ATTACKER_SOURCE, 0))
        client.connect(server.getsockname())
        conn, peer = server.accept()
        conn.close()
    assert peer[0] == ATTACKER_SOURCE


def attacker_cmd(ports: dict[str, int], http_port: int, path: str, read_token: str) -> list[str]:
    cmd = [sys.executable, str(ATTACKER), "--source", ATTACKER_SOURCE, "--duration", str(ATTACK_SECONDS)]
    cmd += ["--http-port", str(http_port), "--rtmp-port", str(ports["rtmp"]), "--srt-port", str(ports["srt"])]
    cmd += ["--whep-port", str(ports["whep"]), "--path", path, "--read-token", read_token]
    plan = dict(ATTACK_PLAN)
    for attack, switch in ATTACK_SWITCHES.items():
        if attack not in enabled_attacks():
            plan[switch] = 0
    for flag, value in plan.items():
        cmd += [f"--{flag}", str(value)]
    return cmd


def setup_api(server: ServerProcess) -> tuple[str, httpx.Client]:
    server.cli_json("accounts", "create", "acme")
    scopes = [a for s in SCOPES for a in ("--scope", s)]
    key = str(server.cli_json("keys", "create", "--account", "acme", "--name", "soak", *scopes)["secret"])
    http = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return key, http


def wait_until(what: str, check: Any, timeout: float, server: ServerProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{server.log()[-3000:]}")


@pytest.mark.slow
def test_legitimate_traffic_survives_every_attack_at_once(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg", why="the legitimate publisher and reader are ffmpeg")
    require(libsrt.available(), "libsrt 1.5 is not installed (Debian libsrt1.5-openssl)")
    require(second_loopback_address(), f"{ATTACKER_SOURCE} is not a local address here")
    config, ports = soak_config(tmp_path)
    server = ServerProcess(config, tmp_path)
    server.start(timeout=120)
    try:
        key, http = setup_api(server)
        with http:
            studios = [http.post("/v1/studios", json={"name": f"Show {i}"}).json()["id"] for i in range(20)]
            resp = http.post(f"/v1/studios/{studios[0]}/sources", json={"name": "cam", "kind": "rtmp"})
            assert resp.status_code == 201, resp.text
            source = resp.json()
            tokens = f"/v1/studios/{studios[0]}/sources/{source['id']}/session-tokens"
            publish = http.post(tokens, json={"action": "publish"}).json()
            read = http.post(tokens, json={"action": "read"}).json()
        soak = run_soak(server, ffmpeg, ports, source["ingest"]["path"], publish, read, key)
    finally:
        server.stop()
    dump(soak, tmp_path / "soak.json")
    check_attacks_ran(soak.report)
    rows = figures(soak)
    print_table(rows)
    print("  attacker:", json.dumps(soak.report))
    if not soak.joined[0]:
        print("  new viewer:", soak.joined[2])
    assert soak.n1 - soak.n0 >= FPS * (soak.t1 - soak.t0) / 2, "the legitimate stream stalled"
    failures = [name for name, _, _, ok in rows if not ok]
    assert not failures, f"failed: {', '.join(failures)}"


@dataclass
class Soak:
    """Everything measured, cut to the attack window [t0, t1] afterwards."""

    frames: FrameLog
    client: PagingClient
    rss: RssSampler
    t0: float = 0.0
    t1: float = 0.0
    n0: int = 0  # newest frame number the reader had at t0 / t1
    n1: int = 0
    rss_before: float = 0.0
    rss_after: float = 0.0
    settled_in: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the server used during the attack
    attacker_cpu: float = 0.0  # the attacker's share of a core (it runs on the same machine)
    joined: tuple[bool, float, str] = (False, 0.0, "")
    alive: bool = False
    report: dict[str, Any] = field(default_factory=dict)


def run_soak(
    server: ServerProcess,
    ffmpeg: str,
    ports: dict[str, int],
    path: str,
    publish: dict[str, Any],
    read: dict[str, Any],
    key: str,
) -> Soak:
    assert server.proc is not None
    pid, work = server.proc.pid, server.workdir
    soak = Soak(FrameLog(), PagingClient(server.base_url, key), RssSampler(pid))
    soak.rss.start()
    seconds = ATTACK_SECONDS + 60  # outlives the attack; ended by the context manager
    with (
        process(publisher_cmd(ffmpeg, publish["urls"]["rtmp"], seconds), work / "publisher.log") as publisher,
        process(reader_cmd(ffmpeg, read["urls"]["rtmp"]), work / "reader.log", stdout=subprocess.PIPE) as reader,
    ):
        follow_framecrc(reader, soak.frames)
        soak.client.start()
        try:
            wait_until("the reader's first frames", lambda: soak.frames.count() >= WARMUP_FRAMES, 30, server)
            probe = join_probe_cmd(ffmpeg, read["urls"]["rtmp"], JOIN_PROBE_FRAMES)
            calm_join = run_join_probe(probe, JOIN_PROBE_WITHIN)
            assert calm_join[0], f"a new viewer cannot join even without an attack: {redact(calm_join[2], read)}"
            soak.rss_before, cpu_before = vm_rss_mb(pid), cpu_seconds(pid)
            soak.n0, soak.t0 = soak.frames.latest() or 0, time.monotonic()
            attack = attacker_cmd(ports, server.port, path, read["token"])
            with process(attack, work / "attacker.log", stdout=subprocess.PIPE) as attacker:
                # a new legitimate viewer tries to join while every attack is at full strength
                time.sleep(JOIN_PROBE_AT)
                joined, took, err = run_join_probe(probe, JOIN_PROBE_WITHIN)
                soak.joined = (joined, took, redact(err, read))
                soak.attacker_cpu = cpu_seconds(attacker.pid) / (time.monotonic() - soak.t0)
                out, _ = attacker.communicate(timeout=ATTACK_SECONDS + 30)
            soak.n1, soak.t1 = soak.frames.latest() or 0, time.monotonic()
            soak.server_cpu = cpu_seconds(pid) - cpu_before
            assert attacker.returncode == 0, (work / "attacker.log").read_text(errors="replace")[-3000:]
            soak.report = json.loads(out.decode().strip().splitlines()[-1])
            soak.rss_after, soak.settled_in = settle(pid, soak.rss_before, soak.t1)
            soak.alive = publisher.poll() is None and reader.poll() is None
        finally:
            soak.client.stop()
            soak.rss.stop()
    return soak


def redact(text: str, credentials: dict[str, Any]) -> str:
    """ffmpeg echoes the URL it failed on; keep the token out of the test's output (whole, then cut short)."""
    return text.replace(str(credentials["token"]), "<token>")[-400:]


def settle(pid: int, before: float, since: float) -> tuple[float, float]:
    """Poll RSS until it is back within bounds of ``before`` (or SETTLE_SECONDS pass); (RSS, seconds taken)."""
    while True:
        now = vm_rss_mb(pid)
        waited = time.monotonic() - since
        if now - before <= MAX_RSS_RETURN_MB or waited >= SETTLE_SECONDS:
            return now, waited
        time.sleep(0.5)


def check_attacks_ran(report: dict[str, Any]) -> None:
    """Without this a broken attacker would make a server look robust."""
    attacks = enabled_attacks()
    if "slowloris" in attacks:
        assert report["slowloris"]["opened"] >= ATTACK_PLAN["slowloris"], report
    if "rtmp" in attacks:
        assert report["rtmp_under_cap"]["handshakes"] > 0 and report["rtmp_over_cap"]["handshakes"] > 0, report
    if "srt" in attacks:
        assert report["srt"]["inductions"] > 100 and report["srt"].get("conclusions", 0) > 0, report
    if "whep" in attacks:
        answered = [n for k, n in report["whep"].items() if k.startswith("status_") and k != "status_0"]
        assert sum(answered) > 0, report


def figures(soak: Soak) -> list[tuple[str, str, str, bool]]:
    """The table: (figure, measured, bound or "info", within bound)."""
    window = soak.t1 - soak.t0
    sent = soak.n1 - soak.n0
    received = len(soak.frames.indexes_in(soak.n0, soak.n1))
    loss = 1 - received / sent if sent > 0 else 1.0
    pace = sent / (FPS * window)  # how far the stream advanced for the reader against the wall clock
    during = soak.client.window(soak.t0, soak.t1)
    calm = soak.client.window(0, soak.t0)
    p99 = percentile([r.seconds for r in during], 99)
    p99_calm = percentile([r.seconds for r in calm], 99)
    failed = sum(1 for r in during if r.status != 200)
    peak = soak.rss.peak(soak.t0, soak.t1)
    grew = soak.rss_after - soak.rss_before
    joined, join_seconds, _ = soak.joined
    return [
        ("frame loss (reader vs publisher)", f"{loss:.2%} ({received}/{sent})", f"< {MAX_FRAME_LOSS:.0%}",
         loss < MAX_FRAME_LOSS),
        ("stream pace (frames / wall clock)", f"{pace:.2f}", "info", True),
        ("client p99 during attack", f"{p99 * 1000:.0f} ms", f"< {MAX_P99_SECONDS * 1000:.0f} ms",
         p99 < MAX_P99_SECONDS),
        ("client p99 before attack", f"{p99_calm * 1000:.0f} ms", "info", True),
        ("client requests failed / total", f"{failed}/{len(during)}", "info", True),
        ("server RSS before attack", f"{soak.rss_before:.0f} MB", "info", True),
        ("server RSS peak during attack", f"{peak:.0f} MB", f"< {MAX_RSS_MB} MB", peak < MAX_RSS_MB),
        (f"server RSS {soak.settled_in:.0f} s after attack", f"{soak.rss_after:.0f} MB ({grew:+.0f})",
         f"+{MAX_RSS_RETURN_MB} MB", grew <= MAX_RSS_RETURN_MB),
        ("new viewer joins during attack", f"{joined} ({join_seconds:.1f} s)", "True", joined),
        ("server CPU during attack", f"{soak.server_cpu / window:.0%} of a core", "info", True),
        ("attacker CPU", f"{soak.attacker_cpu:.0%} of a core", "info", True),
        ("legit publisher and reader alive", str(soak.alive), "True", soak.alive),
    ]  # fmt: skip


def dump(soak: Soak, file: Path) -> None:
    """Every sample, with times relative to the attack's start, for a post-mortem of a failed run."""
    at = soak.t0
    file.write_text(
        json.dumps(
            {
                "attack_seconds": [0, round(soak.t1 - at, 2)],
                "requests": [(round(r.started - at, 3), round(r.seconds, 4), r.status) for r in soak.client.requests],
                "rss_mb": [(round(t - at, 2), round(mb, 1)) for t, mb in soak.rss.samples],
                "frames": [(round(t - at, 3), n) for t, n in soak.frames.frames],
                "attacker": soak.report,
            }
        )
    )


def print_table(rows: list[tuple[str, str, str, bool]]) -> None:
    print("\n  figure                               measured             bound      ok")
    for name, measured, bound, ok in rows:
        print(f"  {name:<36} {measured:<20} {bound:<10} {'yes' if ok else 'NO'}")
