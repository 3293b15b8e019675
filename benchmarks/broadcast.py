"""Studio broadcast benchmarks: a real ``trax serve`` against a native peer, side by side in one run.

    .venv/bin/python benchmarks/broadcast.py                      # passthrough, composite, memory (~4 min)
    .venv/bin/python benchmarks/broadcast.py passthrough --passthrough-seconds 40
    .venv/bin/python benchmarks/broadcast.py composite --composite-seconds 60

passthrough: one 1080p30 6 Mbps H.264 (1 s GOP) + AAC FLV feed (``ingest.rtmp_feed``, its audio remuxed to
48 kHz stereo unless ``--mono-audio``) is published in real time, at the
same moment, to a trax RTMP source whose studio is live with a ``single`` passthrough program and
three ``custom_rtmp`` destinations, and to nginx-rtmp relaying it with three ``push`` directives.
Every destination is an RTMP listener of this script (PyAV, one process each) that logs the
arrival time and the last bytes of each video packet; the publisher (also PyAV, pacing the file by
its timestamps like ``ffmpeg -re``) logs when it hands each packet to its muxer. A packet's tail
bytes are the same at both ends (passthrough forwards the slice data as it came), so every frame
is matched: frames received per destination, and the added latency of each frame
(``CLOCK_MONOTONIC`` is one clock for every process of the box).

composite: two 720p30 feeds (4 and 3 Mbps) into a ``grid`` program (1280x720, 30 fps, 3 Mbps,
x264 veryfast) with one destination, then the same two feeds into one ``ffmpeg`` that listens for
both, scales each to 640x360, ``hstack`` + ``pad`` onto 1280x720, ``amix`` the audio and encodes
with the compositor's x264 settings. Run one after the other (each wants most of a core).

memory: one trax server, four sources publishing all along (the 1080p feed and three 720p
ones); RSS with the passthrough program and 0, 1, then 3 destinations, then with a ``grid`` of
1 and of 3 of the 720p sources.

CPU is in % of one core from ``/proc`` (all threads), RSS from ``VmRSS``; receivers, publishers
and feeds are never measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest import CpuClock, need, rtmp_feed, rtmp_push_cmd
from measure import memory_kib, stop_group

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.broadcast.serve_support import Deployment, deployment  # noqa: E402
from trax.ports import free_port  # noqa: E402

PASSTHROUGH_FEED = {"size": "1920x1080", "rate": 30, "bitrate": "6M"}
COMPOSITE_FEEDS = ({"size": "1280x720", "rate": 30, "bitrate": "4M"}, {"size": "1280x720", "rate": 30, "bitrate": "3M"})
OUTPUT = {"width": 1280, "height": 720, "fps": 30, "videoBitrate": 3_000_000}
TAIL = 16
"""Bytes at the end of a video packet that identify it at both ends (the feed has noise in every frame)."""

TARGETS = {"cpu_ratio": 2.0, "latency_ms": 300.0, "fps": 29.5, "composite_ratio": 1.25, "dest_mib": 10.0,
           "source_mib": 60.0}  # fmt: skip


def _scratch(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/dev/shm" if Path("/dev/shm").is_dir() else None))


def _spawn(cmd: list[str], procs: list[subprocess.Popen[bytes]], **kw: Any) -> subprocess.Popen[bytes]:
    """Start a helper process in its own session (so ``stop_group`` ends it and its children)."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(cmd, start_new_session=True, cwd=ROOT, **kw)
    procs.append(proc)
    return proc


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        with contextlib.suppress(Exception):
            stop_group(proc, timeout=5)


def _rss_mib(pid: int, seconds: float = 2.0, cpu: dict[str, float] | None = None, key: str = "") -> float:
    """Median resident memory over ``seconds`` (MiB); with ``cpu``, also the CPU % over them as ``cpu[key]``."""
    samples = []
    clock = CpuClock([pid])
    clock.mark()
    end = time.monotonic() + seconds
    while True:
        samples.append(memory_kib(pid)[0])
        if time.monotonic() >= end:
            break
        time.sleep(0.2)
    if cpu is not None:
        clock.mark()
        cpu[key] = clock.percent(pid, 0, 1)
    return statistics.median(samples) / 1024


def _sleep_sampling(seconds: float, pids: list[int], peak: dict[int, int]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for pid in pids:
            peak[pid] = max(peak.get(pid, 0), memory_kib(pid)[0])
        time.sleep(min(0.25, max(end - time.monotonic(), 0)))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- helper processes: an RTMP receiver and a real-time publisher (both PyAV) ------------------------


def _receive_main(port: int, log_path: Path) -> None:
    """Accept RTMP publishers on ``port`` one after the other; log ``<monotonic> <tail hex>`` per video packet."""
    import av

    with log_path.open("w", buffering=1) as log:
        log.write("listening\n")
        while True:
            try:
                container: Any = av.open(
                    f"rtmp://127.0.0.1:{port}/live/k",
                    options={"listen": "1", "analyzeduration": "3000000", "probesize": "20000000"},
                    timeout=(24 * 3600, 15),
                )
            except av.error.FFmpegError as exc:
                log.write(f"# {time.monotonic():.6f} open: {exc}\n")
                time.sleep(0.1)
                continue
            try:
                if not container.streams.video:
                    log.write(f"# {time.monotonic():.6f} no video stream\n")
                    continue
                for packet in container.demux(container.streams.video[0]):
                    if packet.size:
                        log.write(f"{time.monotonic():.6f} {bytes(packet)[-TAIL:].hex()}\n")
            except (av.error.FFmpegError, EOFError) as exc:
                log.write(f"# {time.monotonic():.6f} end: {exc!r}\n")
            finally:
                container.close()


def _publish_main(feed: Path, url: str, log_path: Path) -> None:
    """Publish ``feed`` to ``url`` in real time (by its timestamps); log ``<monotonic> <tail hex>`` per video packet."""
    import av

    source: Any = av.open(str(feed))
    out: Any = av.open(url, "w", format="flv")
    streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
    start: float | None = None
    with log_path.open("w", buffering=1 << 16) as log:
        for packet in source.demux():
            if packet.dts is None:
                continue
            at = float(packet.dts * packet.time_base)
            if start is None:
                start = time.monotonic() - at
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            video = packet.stream.type == "video"
            tail = bytes(packet)[-TAIL:].hex() if video else ""
            packet.stream = streams[packet.stream.index]
            sent = time.monotonic()
            out.mux(packet)
            if video:
                log.write(f"{sent:.6f} {tail}\n")
    out.close()
    source.close()


class Receiver:
    """One RTMP destination: a listener process of this script at ``rtmp://127.0.0.1:<port>/live/k``."""

    def __init__(self, work: Path, name: str, procs: list[subprocess.Popen[bytes]]) -> None:
        self.name = name
        self.port = free_port()
        self.log = work / f"receiver-{name}.log"
        self.proc = _spawn([sys.executable, __file__, "_receive", str(self.port), str(self.log)], procs)

    @property
    def app_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live"

    def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.exists() and self.log.read_text().startswith("listening"):
                time.sleep(0.3)  # av.open binds right after the line is written
                return
            time.sleep(0.05)
        raise RuntimeError(f"receiver {self.name} did not start")

    def arrivals(self) -> list[tuple[float, str]]:
        return _read_log(self.log)


def _read_log(path: Path) -> list[tuple[float, str]]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split() if not line.startswith("#") else []
            if len(parts) == 2:
                with contextlib.suppress(ValueError):
                    out.append((float(parts[0]), parts[1]))
    return out


@dataclass
class Delivery:
    """What one destination got of what the publisher sent."""

    frames: int
    """Video packets of the feed that arrived (matched by their tail bytes)."""
    other: int
    """Video packets that are not the feed's (the program's slate before and after it)."""
    latencies_ms: list[float]
    """Publisher → destination, for the frames sent inside the steady-state window."""


def _delivery(sent: dict[str, float], arrivals: list[tuple[float, str]], window: tuple[float, float]) -> Delivery:
    seen: set[str] = set()
    latencies: list[float] = []
    other = 0
    for at, tail in arrivals:
        t_sent = sent.get(tail)
        if t_sent is None:
            other += 1
            continue
        if tail in seen:
            continue
        seen.add(tail)
        if window[0] <= t_sent <= window[1]:
            latencies.append(1000.0 * (at - t_sent))
    return Delivery(len(seen), other, latencies)


# --- nginx-rtmp as a relay -----------------------------------------------------------------------------


def _nginx_relay(work: Path, targets: list[str], procs: list[subprocess.Popen[bytes]]) -> tuple[int, int]:
    """nginx + libnginx-mod-rtmp: ``live/<name>`` pushed to every target; (pid, port).

    ``ingest._rtmp_nginx`` starts nginx with a fixed ``record`` application, hence this relay configuration.
    """
    nginx = need("nginx") if shutil.which("nginx") else need("/usr/sbin/nginx")
    module = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
    if not module.exists():
        sys.exit("libnginx-mod-rtmp is not installed (Debian: see .ci/run)")
    port = free_port()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    pushes = "".join(f"    push {url};\n" for url in targets)
    conf = work / "nginx.conf"
    conf.write_text(
        f"load_module {module};\n"
        f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {work}/nginx.pid;\n"
        f"error_log {work}/logs/error.log warn;\nevents {{ worker_connections 1024; }}\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n"
        f"  application live {{ live on;\n{pushes}  }} }} }}\n"
    )
    proc = _spawn([nginx, "-p", str(work), "-c", str(conf)], procs, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc.pid, port
        time.sleep(0.1)
    sys.exit("nginx did not start")


# --- trax through /v1 ------------------------------------------------------------------------------------


def _soft_wait(what: str, wait: Callable[[], None]) -> bool:
    """Wait for a state; on timeout say so and go on (the figures then show what happened)."""
    try:
        wait()
        return True
    except AssertionError as exc:
        print(f"warning: {str(exc).splitlines()[0]}", flush=True)
        return False


def _patch_program(dep: Deployment, studio: str, program: dict[str, Any]) -> None:
    r = dep.http.patch(f"/v1/studios/{studio}", json={"program": program})
    if r.status_code != 200:
        raise RuntimeError(f"PATCH program: {r.status_code} {r.text}")


def _go_live(dep: Deployment, studio: str) -> None:
    r = dep.http.post(f"/v1/studios/{studio}/go-live")
    if r.status_code >= 300:
        raise RuntimeError(f"go-live: {r.status_code} {r.text}")


def _add_destination(dep: Deployment, studio: str, receiver: Receiver) -> str:
    return str(
        dep.destination(studio, name=receiver.name, platform="custom_rtmp", rtmpUrl=receiver.app_url, streamKey="k")[
            "id"
        ]
    )


def _program_state(dep: Deployment, studio: str) -> str:
    status = dep.status(studio)
    program = status.get("program") or {}
    dests = ", ".join(f"{d['status']}{'(' + str(d.get('error')) + ')' if d.get('error') else ''}"
                      for d in status.get("destinations", []))  # fmt: skip
    return f"program {program.get('status')}{' ' + str(program.get('error')) if program.get('error') else ''}; " + (
        f"destinations {dests or '-'}"
    )


@contextlib.contextmanager
def _trax(work: Path) -> Iterator[Deployment]:
    """A real ``trax serve`` (SQLite, RTMP ingest, an API key), stopped at the end even on failure."""
    work.mkdir(parents=True, exist_ok=True)
    with deployment(work) as dep:
        try:
            yield dep
        except BaseException:
            print(f"--- trax serve log (tail) ---\n{dep.server.log()[-3000:]}", file=sys.stderr)
            raise


# --- 1. passthrough restream ---------------------------------------------------------------------------


@dataclass
class RestreamSide:
    name: str
    cpu_steady: float
    cpu_whole: float
    rss_idle_mib: float
    rss_peak_mib: float
    deliveries: list[Delivery]


def run_passthrough(args: argparse.Namespace) -> dict[str, Any]:
    need("ffmpeg")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    feed = rtmp_feed(args.passthrough_seconds, cache, PASSTHROUGH_FEED)
    if not args.mono_audio:
        feed = _stereo(feed)
    work = _scratch("trax-bench-broadcast-pt-")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        trax_rx = [Receiver(work, f"trax-{i}", procs) for i in range(3)]
        nginx_rx = [Receiver(work, f"nginx-{i}", procs) for i in range(3)]
        for rx in (*trax_rx, *nginx_rx):
            rx.wait_listening()
        with _trax(work / "trax") as dep:
            studio = dep.studio("passthrough")
            src = dep.source(studio)
            for rx in trax_rx:
                _add_destination(dep, studio, rx)
            _patch_program(dep, studio, {"layout": "single", "sources": [src["id"]], "passthrough": True})
            _go_live(dep, studio)
            _soft_wait("trax destinations live", lambda: dep.wait_destinations(studio, "live", 30))
            publish_url = dep.publish_url(src)
            nginx_pid, nginx_port = _nginx_relay(work / "nginx", [f"{rx.app_url}/k" for rx in nginx_rx], procs)
            trax_pid = dep.server.proc.pid  # type: ignore[union-attr]
            time.sleep(1.0)
            idle = {pid: memory_kib(pid)[0] for pid in (trax_pid, nginx_pid)}
            slate = CpuClock([trax_pid])  # live, the slate going to the 3 destinations, nothing published yet
            slate.mark()
            time.sleep(3.0)
            slate.mark()
            clock = CpuClock([trax_pid, nginx_pid])
            logs = [work / "sent-trax.log", work / "sent-nginx.log"]
            clock.mark()
            pubs = [
                _spawn([sys.executable, __file__, "_publish", str(feed), publish_url, str(logs[0])], procs),
                _spawn([sys.executable, __file__, "_publish", str(feed), f"rtmp://127.0.0.1:{nginx_port}/live/feed",
                        str(logs[1])], procs),
            ]  # fmt: skip
            peak: dict[int, int] = {}
            _sleep_sampling(args.warmup, [trax_pid, nginx_pid], peak)
            clock.mark()
            # steady state ends with the first publisher to finish: both servers measured over the same window
            deadline = time.monotonic() + args.passthrough_seconds * 2 + 30
            while all(p.poll() is None for p in pubs) and time.monotonic() < deadline:
                _sleep_sampling(0.25, [trax_pid, nginx_pid], peak)
            clock.mark()
            while any(p.poll() is None for p in pubs) and time.monotonic() < deadline:
                _sleep_sampling(0.25, [trax_pid, nginx_pid], peak)
            clock.mark()
            time.sleep(2.0)  # the last frames reach the receivers
            state = _program_state(dep, studio)
            window = (clock.marks[1][0], clock.marks[2][0])
            load = os.getloadavg()[0]
            dep.http.post(f"/v1/studios/{studio}/go-offline")
    finally:
        _stop_all(procs)
    sent_trax = dict((tail, t) for t, tail in _read_log(logs[0]))
    sent_nginx = dict((tail, t) for t, tail in _read_log(logs[1]))
    sides = [
        RestreamSide("trax serve", clock.percent(trax_pid, 1, 2), clock.percent(trax_pid, 0, 3),
                     idle[trax_pid] / 1024, peak[trax_pid] / 1024,
                     [_delivery(sent_trax, rx.arrivals(), window) for rx in trax_rx]),
        RestreamSide("nginx-rtmp (push x3)", clock.percent(nginx_pid, 1, 2), clock.percent(nginx_pid, 0, 3),
                     idle[nginx_pid] / 1024, peak[nginx_pid] / 1024,
                     [_delivery(sent_nginx, rx.arrivals(), window) for rx in nginx_rx]),
    ]  # fmt: skip
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sent = len(sent_trax)
    steady_s = window[1] - window[0]
    size, br = PASSTHROUGH_FEED["size"], PASSTHROUGH_FEED["bitrate"]
    audio = "mono AAC, converted by trax" if args.mono_audio else "48 kHz stereo AAC"
    print(f"\n1. Passthrough restream: {size}@30 {br}bps feed ({audio}), {args.passthrough_seconds} s"
          f" -> 3 RTMP destinations (steady window {steady_s:.1f} s, load avg {load:.1f}); trax: {state}")  # fmt: skip
    print(
        f"{'server':<22} {'CPU % steady':>12} {'(whole)':>8} {'RSS idle':>9} {'RSS peak':>9}"
        f"  {'frames per destination (of ' + str(sent) + ')':<30} {'latency median / p95 ms per destination'}"
    )
    result: dict[str, Any] = {"sent": sent, "load": load}
    for side in sides:
        frames = " ".join(f"{d.frames}" for d in side.deliveries)
        lat = "  ".join(
            f"{statistics.median(d.latencies_ms):.0f}/{_percentile(d.latencies_ms, 0.95):.0f}" if d.latencies_ms
            else "-" for d in side.deliveries
        )  # fmt: skip
        print(f"{side.name:<22} {side.cpu_steady:12.2f} {side.cpu_whole:8.2f} {side.rss_idle_mib:9.1f}"
              f" {side.rss_peak_mib:9.1f}  {frames:<30} {lat}")  # fmt: skip
        everything = [x for d in side.deliveries for x in d.latencies_ms]
        result[side.name] = {
            "cpu": side.cpu_steady, "cpu_whole": side.cpu_whole, "rss_idle": side.rss_idle_mib,
            "rss_peak": side.rss_peak_mib, "frames": [d.frames for d in side.deliveries],
            "other": [d.other for d in side.deliveries],
            "latency_median": statistics.median(everything) if everything else float("nan"),
            "latency_p95": _percentile(everything, 0.95),
        }  # fmt: skip
    t, n = result[sides[0].name], result[sides[1].name]
    ratio = t["cpu"] / max(n["cpu"], 0.01)
    print(f"trax live before the feed (slate to 3 destinations): {slate.percent(trax_pid, 0, 1):.2f} % CPU;"
          f" slate/other video packets per trax destination: {t['other']}")  # fmt: skip
    print(f"CPU ratio trax / nginx-rtmp: {ratio:.2f}x steady ({t['cpu_whole'] / max(n['cpu_whole'], 0.01):.2f}x"
          f" whole) (target <= {TARGETS['cpu_ratio']:.0f}x)")  # fmt: skip
    print(f"added latency, median over all destinations: trax {t['latency_median']:.0f} ms (p95"
          f" {t['latency_p95']:.0f}), nginx-rtmp {n['latency_median']:.0f} ms (p95 {n['latency_p95']:.0f})"
          f" (target trax <= {TARGETS['latency_ms']:.0f} ms)", flush=True)  # fmt: skip
    result["ratio"] = ratio
    return result


# --- 2. composite -----------------------------------------------------------------------------------------


def _composite_feeds(args: argparse.Namespace) -> list[Path]:
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    seconds = int(args.warmup + args.composite_seconds + 10)
    return [rtmp_feed(seconds, cache, spec) for spec in COMPOSITE_FEEDS]


def _stereo(feed: Path) -> Path:
    """``feed`` with its (mono) AAC re-encoded as 48 kHz stereo, the program's audio: passthrough forwards it as is."""
    out = feed.with_name(f"{feed.stem}-stereo.flv")
    if not out.exists():
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(feed), "-c:v", "copy", "-c:a", "aac",
             "-ac", "2", "-ar", "48000", "-b:a", "128k", "-f", "flv", f"{out}.part"],
            check=True,
        )  # fmt: skip
        os.replace(f"{out}.part", out)
    return out


def _fps(arrivals: list[tuple[float, str]], window: tuple[float, float]) -> float:
    inside = sum(1 for at, _ in arrivals if window[0] <= at <= window[1])
    return inside / max(window[1] - window[0], 1e-9)


def _ffmpeg_mixer_cmd(inputs: list[int], receiver: Receiver) -> list[str]:
    """The compositor's work as one ffmpeg: grid of two (640x360 each, letterboxed in 640x720 cells)."""
    graph = (
        "[0:v]scale=640:360:flags=bilinear[l];[1:v]scale=640:360:flags=bilinear[r];"
        "[l][r]hstack=inputs=2,pad=1280:720:0:180,fps=30,format=yuv420p[v];"
        "[0:a][1:a]amix=inputs=2,aresample=48000,aformat=channel_layouts=stereo[a]"
    )
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    for port in inputs:
        cmd += ["-listen", "1", "-analyzeduration", "1000000", "-i", f"rtmp://127.0.0.1:{port}/live/in"]
    return [
        *cmd,
        "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", str(OUTPUT["videoBitrate"]),
        "-g", "60", "-bf", "0", "-forced-idr", "1", "-x264-params", "repeat-headers=1",
        "-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-ac", "2",
        "-f", "flv", f"{receiver.app_url}/k",
    ]  # fmt: skip


def _push_until_connected(feed: Path, url: str, procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """Push ``feed``; an ffmpeg listener opens its second input only after probing the first, so retry."""
    deadline = time.monotonic() + 30
    while True:
        push = _spawn(rtmp_push_cmd(feed, url), procs, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        if push.poll() is None or time.monotonic() > deadline:
            return push
        time.sleep(0.2)


@dataclass
class CompositeSide:
    name: str
    cpu: float
    rss_mib: float
    fps: float
    frames: int


def run_composite(args: argparse.Namespace) -> dict[str, Any]:
    need("ffmpeg")
    feeds = _composite_feeds(args)
    work = _scratch("trax-bench-broadcast-comp-")
    sides: list[CompositeSide] = []
    procs: list[subprocess.Popen[bytes]] = []
    state = ""
    try:
        # trax: two RTMP sources -> grid program -> one destination
        rx = Receiver(work, "trax-composite", procs)
        rx.wait_listening()
        with _trax(work / "trax") as dep:
            studio = dep.studio("composite")
            srcs = [dep.source(studio) for _ in feeds]
            _add_destination(dep, studio, rx)
            _patch_program(dep, studio, {"layout": "grid", "sources": [s["id"] for s in srcs], "output": OUTPUT})
            _go_live(dep, studio)
            _soft_wait("trax destination live", lambda: dep.wait_destinations(studio, "live", 30))
            urls = [dep.publish_url(s) for s in srcs]
            pid = dep.server.proc.pid  # type: ignore[union-attr]
            # quiet: a push still running when the server stops would print its URL, token included
            pushes = [
                _spawn(rtmp_push_cmd(f, u), procs, stderr=subprocess.DEVNULL) for f, u in zip(feeds, urls, strict=True)
            ]
            peak: dict[int, int] = {}
            _sleep_sampling(args.warmup, [pid], peak)
            clock = CpuClock([pid])
            clock.mark()
            _sleep_sampling(args.composite_seconds, [pid], peak)
            clock.mark()
            state = _program_state(dep, studio)
            for push in pushes:
                stop_group(push, timeout=5)
            window = (clock.marks[0][0], clock.marks[1][0])
            arrivals = rx.arrivals()
            sides.append(CompositeSide("trax serve (grid)", clock.percent(pid, 0, 1), peak[pid] / 1024,
                                       _fps(arrivals, window), len(arrivals)))  # fmt: skip
            dep.http.post(f"/v1/studios/{studio}/go-offline")
        _stop_all(procs)
        procs.clear()

        # the same work as one ffmpeg command listening for both feeds
        rx = Receiver(work, "ffmpeg-composite", procs)
        rx.wait_listening()
        ports = [free_port() for _ in feeds]
        mixer_log = (work / "ffmpeg-mixer.log").open("wb")  # it reports its inputs ending when the pushes stop
        mixer = _spawn(_ffmpeg_mixer_cmd(ports, rx), procs, stderr=mixer_log)
        time.sleep(0.5)
        for feed, port in zip(feeds, ports, strict=True):
            _push_until_connected(feed, f"rtmp://127.0.0.1:{port}/live/in", procs)
        peak = {}
        _sleep_sampling(args.warmup, [mixer.pid], peak)
        clock = CpuClock([mixer.pid])
        clock.mark()
        _sleep_sampling(args.composite_seconds, [mixer.pid], peak)
        clock.mark()
        window = (clock.marks[0][0], clock.marks[1][0])
        arrivals = rx.arrivals()
        sides.append(CompositeSide("ffmpeg (filter_complex)", clock.percent(mixer.pid, 0, 1), peak[mixer.pid] / 1024,
                                   _fps(arrivals, window), len(arrivals)))  # fmt: skip
        load = os.getloadavg()[0]
    finally:
        _stop_all(procs)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n2. Composite: 2 x 720p30 (4 + 3 Mbps) -> grid 1280x720@30 3 Mbps x264 veryfast -> 1 destination,"
        f" {args.composite_seconds} s window each, one after the other (load avg {load:.1f}); trax: {state}"
    )
    print(f"{'server':<24} {'CPU %':>7} {'RSS peak MiB':>13} {'fps at destination':>19}")
    for s in sides:
        print(f"{s.name:<24} {s.cpu:7.1f} {s.rss_mib:13.1f} {s.fps:19.2f}")
    ratio = sides[0].cpu / max(sides[1].cpu, 0.01)
    print(f"trax sustained fps {sides[0].fps:.2f} (target >= {TARGETS['fps']}); CPU ratio trax / ffmpeg: {ratio:.2f}x"
          f" (target <= {TARGETS['composite_ratio']}x)", flush=True)  # fmt: skip
    return {"sides": [s.__dict__ for s in sides], "ratio": ratio, "load": load}


# --- 3. memory ----------------------------------------------------------------------------------------------


def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    need("ffmpeg")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    big = _stereo(rtmp_feed(args.passthrough_seconds, cache, PASSTHROUGH_FEED))
    small = _composite_feeds(args)[0]
    work = _scratch("trax-bench-broadcast-mem-")
    procs: list[subprocess.Popen[bytes]] = []
    rss: dict[str, float] = {}
    cpu: dict[str, float] = {}
    try:
        rxs = [Receiver(work, f"mem-{i}", procs) for i in range(3)]
        for rx in rxs:
            rx.wait_listening()
        with _trax(work / "trax") as dep:
            pid = dep.server.proc.pid  # type: ignore[union-attr]
            studio = dep.studio("memory")
            cam = dep.source(studio)
            grid = [dep.source(studio) for _ in range(3)]
            urls = [dep.publish_url(s) for s in (cam, *grid)]
            _patch_program(dep, studio, {"layout": "single", "sources": [cam["id"]], "passthrough": True})
            rss["server, before go-live"] = _rss_mib(pid, 0.5)
            for feed, url in zip([big, small, small, small], urls, strict=True):  # quiet: the URLs hold tokens
                _spawn(rtmp_push_cmd(feed, url), procs, stderr=subprocess.DEVNULL)
            for s in (cam, *grid):
                _soft_wait("source live", lambda s=s: dep.wait_source_live(studio, s["id"], 20))
            _go_live(dep, studio)
            time.sleep(args.settle)
            rss["passthrough, 0 destinations"] = _rss_mib(pid, args.reading, cpu, "passthrough, 0 destinations")
            ids = [_add_destination(dep, studio, rxs[0])]
            _soft_wait("1 destination live", lambda: dep.wait_destinations(studio, "live", 20))
            time.sleep(args.settle)
            rss["passthrough, 1 destination"] = _rss_mib(pid, args.reading, cpu, "passthrough, 1 destination")
            ids += [_add_destination(dep, studio, rx) for rx in rxs[1:]]
            _soft_wait("3 destinations live", lambda: dep.wait_destinations(studio, "live", 20))
            time.sleep(args.settle)
            rss["passthrough, 3 destinations"] = _rss_mib(pid, args.reading, cpu, "passthrough, 3 destinations")
            states = [_program_state(dep, studio)]
            _patch_program(dep, studio, {"layout": "grid", "sources": [grid[0]["id"]], "output": OUTPUT})
            time.sleep(args.settle + 2)
            rss["grid of 1, 3 destinations"] = _rss_mib(pid, args.reading, cpu, "grid of 1, 3 destinations")
            _patch_program(dep, studio, {"layout": "grid", "sources": [s["id"] for s in grid], "output": OUTPUT})
            time.sleep(args.settle + 2)
            rss["grid of 3, 3 destinations"] = _rss_mib(pid, args.reading, cpu, "grid of 3, 3 destinations")
            states.append(_program_state(dep, studio))
            dep.http.post(f"/v1/studios/{studio}/go-offline")
    finally:
        _stop_all(procs)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n3. Memory (one trax serve; 1080p 6 Mbps + 3 x 720p 4 Mbps sources publishing all along;"
          f" CPU over each reading; load avg {os.getloadavg()[0]:.1f})")  # fmt: skip
    for what, mib in rss.items():
        load = f"   CPU {cpu[what]:5.1f} %" if what in cpu else ""
        print(f"  RSS {what:<32} {mib:7.1f} MiB{load}")
    per_dest = (rss["passthrough, 3 destinations"] - rss["passthrough, 0 destinations"]) / 3
    first_dest = rss["passthrough, 1 destination"] - rss["passthrough, 0 destinations"]
    per_source = (rss["grid of 3, 3 destinations"] - rss["grid of 1, 3 destinations"]) / 2
    print(f"per destination: {per_dest:.1f} MiB (0 -> 3; the first: {first_dest:.1f} MiB) (target < "
          f"{TARGETS['dest_mib']:.0f}); per composited source: {per_source:.1f} MiB (grid 1 -> 3) (target < "
          f"{TARGETS['source_mib']:.0f})")  # fmt: skip
    print(f"  trax: {states[0]} | after the grid of 3: {states[1]}", flush=True)
    return {"rss": rss, "cpu": cpu, "per_destination": per_dest, "per_source": per_source}


# --- entry point ---------------------------------------------------------------------------------------------

BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "passthrough": run_passthrough,
    "composite": run_composite,
    "memory": run_memory,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_receive"]:
        _receive_main(int(argv[1]), Path(argv[2]))
        return
    if argv[:1] == ["_publish"]:
        _publish_main(Path(argv[1]), argv[2], Path(argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--passthrough-seconds", type=int, default=40, help="length of the passthrough feed")
    parser.add_argument("--composite-seconds", type=int, default=60, help="measured window of each composite run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out at the start of each window")
    parser.add_argument("--reading", type=float, default=3.0, help="memory: seconds each reading lasts")
    parser.add_argument("--settle", type=float, default=4.0, help="memory: seconds between a change and its reading")
    parser.add_argument(
        "--mono-audio", action="store_true", help="passthrough: keep the feed's mono AAC (trax then converts it)"
    )
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "trax-bench"), help="feed cache")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders (receiver logs, server logs)")
    args = parser.parse_args(argv)
    unknown = [w for w in args.which if w not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}")
    started = time.monotonic()
    for name in args.which or list(BENCHMARKS):
        BENCHMARKS[name](args)
    print(f"\n{os.uname().nodename}: {os.cpu_count()} CPUs; took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
