"""Ingest-plane benchmarks: trax's listeners against the native Debian peers, side by side in one run.

    .venv/bin/python benchmarks/ingest.py                 # every benchmark below
    .venv/bin/python benchmarks/ingest.py srt --seconds 20

Each protocol adds one function to ``BENCHMARKS`` (name -> ``run(args) -> None``)
and keeps its helpers prefixed with its name. Shared here: process CPU and
memory readings from ``/proc`` and the test feed.

SRT: a 1080p 20 Mbps H.264 + AAC MPEG-TS feed (encoded once, then pushed with
``ffmpeg -re -c copy``) goes at the same time to a ``trax`` SRT listener (its own
process: a runtime with only the SRT transport, a token-checked publisher and
a hub reader that counts frames) and to ``srt-live-transmit`` as listener
(writing what it receives to a file, whose frames are counted afterwards).
Printed: CPU in % of one core over the push, resident memory, frames received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from measure import cpu_seconds, memory_kib

from trax.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Measure:
    name: str
    cpu_percent: float
    """% of one core in steady state (after the first seconds of the push: connect, probe, first status)."""
    cpu_whole_percent: float
    """% of one core over the whole push."""
    rss_mib: float
    peak_rss_mib: float
    frames: int
    frames_sent: int

    def row(self) -> str:
        share = 100.0 * self.frames / self.frames_sent if self.frames_sent else 0.0
        return (
            f"{self.name:<22} {self.cpu_percent:7.2f} {self.cpu_whole_percent:7.2f} {self.rss_mib:9.1f}"
            f" {self.peak_rss_mib:9.1f} {self.frames:7d}/{self.frames_sent:<5d} ({share:5.1f}%)"
        )


HEADER = f"{'server':<22} {'CPU %':>7} {'(whole)':>7} {'RSS MiB':>9} {'peak MiB':>9} {'video frames received':>22}"


class CpuClock:
    """CPU of some processes between marks (``/proc`` readings, all threads)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.marks: list[tuple[float, dict[int, float]]] = []

    def mark(self) -> None:
        self.marks.append((time.monotonic(), {pid: cpu_seconds(pid) for pid in self.pids}))

    def percent(self, pid: int, first: int, last: int) -> float:
        (t0, c0), (t1, c1) = self.marks[first], self.marks[last]
        return 100.0 * (c1[pid] - c0[pid]) / max(t1 - t0, 1e-9)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"{tool} is not installed (Debian: see .ci/run)")
    return path


def video_frames(path: Path) -> int:
    """Video packets PyAV demuxes from a file (one per frame for H.264 in MPEG-TS)."""
    import av

    if not path.exists() or path.stat().st_size == 0:
        return 0
    with av.open(str(path)) as container:
        if not container.streams.video:
            return 0
        return sum(1 for p in container.demux(container.streams.video[0]) if p.size)


# --- SRT ---------------------------------------------------------------------------

SRT_FEED = {"size": "1920x1080", "rate": 30, "bitrate": "20M"}
SRT_WARMUP_SECONDS = 3.0


def srt_feed(seconds: int, cache: Path, spec: dict[str, object] | None = None) -> Path:
    """An H.264 + AAC MPEG-TS test feed (default: 1080p 20 Mbps), encoded once per spec and length."""
    spec = spec or SRT_FEED
    rate, size, br = spec["rate"], spec["size"], spec["bitrate"]
    height = str(size).split("x")[1]
    out = cache / f"srt-feed-{height}p-{br}-{seconds}s.ts"
    if out.exists():
        return out
    need("ffmpeg")
    muxrate = f"{int(str(br).rstrip('M')) * 11 // 10}M"
    # noise keeps the encoder at the target rate (a plain test pattern compresses to almost nothing)
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds},noise=alls=30:allf=t",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p",
        "-b:v", br, "-maxrate", br, "-bufsize", br, "-x264-params", "nal-hrd=cbr",
        "-c:a", "aac", "-b:a", "128k", "-muxrate", muxrate, "-f", "mpegts", str(out) + ".part",
    ]  # fmt: skip
    print(f"encoding the {size} {br}bps feed ({seconds} s) once ...", flush=True)
    subprocess.run(cmd, check=True)
    os.replace(str(out) + ".part", out)
    return out


def srt_push_cmd(feed: Path, url: str) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(feed), "-c", "copy",
            "-f", "mpegts", url]  # fmt: skip


async def _srt_server(port: int) -> None:
    """The trax side (run in its own process): SRT transport only; prints the URL, then the frame count."""
    from trax.runtime import Runtime
    from trax.services import Principal
    from trax.settings import load_settings

    settings = load_settings(
        None,
        storage={"backend": "memory"},
        blobs={"backend": "memory"},
        security={"secret_key": "benchmark-" + "x" * 40},
        log_level="warning",
        ingest={"host": "127.0.0.1", "srt": {"enabled": True, "port": port}},
    )
    async with Runtime(settings) as rt:
        await rt.start_transports()
        acct = await rt.services.accounts.create("bench")
        op = Principal.operator(acct.id)
        studio = await rt.services.studios.create(op, name="bench")
        source = await rt.services.sources.create(op, studio.id, name="feed", kind="srt")
        creds = await rt.media_tokens.mint(path=source.path, action="publish", audience="trax-ingest")
        read = await rt.media_tokens.mint(path=source.path, action="read", audience="trax-ingest")
        frames = 0
        async with rt.hub.open_reader(source.path, max_queue=100_000) as reader:
            print(
                json.dumps(
                    {
                        "streamid": f"publish:{source.path}:trax:{creds.token}",
                        "read_streamid": f"read:{source.path}:trax:{read.token}",
                    }
                ),
                flush=True,
            )
            tracks = await reader.tracks()
            video = next(t.index for t in tracks if t.kind == "video")
            with contextlib.suppress(StopAsyncIteration):
                while True:  # in bursts, as a real consumer (a muxer) would take them
                    packet = await reader.__anext__()
                    frames += packet.track == video
                    while (packet := reader.get_nowait()) is not None:
                        frames += packet.track == video
        print(json.dumps({"frames": frames}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def run_srt(args: argparse.Namespace) -> None:
    need("ffmpeg")
    slt = need("srt-live-transmit")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    feed = srt_feed(args.seconds, cache)
    sent = video_frames(feed)
    trax_port, slt_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    work = Path(tempfile.mkdtemp(prefix="trax-bench-srt-"))
    slt_out = work / "srt-live-transmit.ts"

    server = subprocess.Popen(
        [sys.executable, __file__, "_srt-server", str(trax_port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    slt_file = slt_out.open("wb")
    native = subprocess.Popen(  # srt-live-transmit 1.5 writes files only as file://con (stdout)
        [slt, "-q", "-chunk:1316", f"srt://127.0.0.1:{slt_port}?mode=listener", "file://con"],
        stdout=slt_file,
    )
    pushes: list[subprocess.Popen[bytes]] = []
    try:
        assert server.stdout is not None and server.stdin is not None
        streamid = json.loads(server.stdout.readline())["streamid"]
        time.sleep(0.5)
        idle = {pid: memory_kib(pid)[0] for pid in (server.pid, native.pid)}
        clock = CpuClock([server.pid, native.pid])
        clock.mark()
        pushes = [
            subprocess.Popen(srt_push_cmd(feed, f"srt://127.0.0.1:{trax_port}?streamid={streamid}&linger=2")),
            subprocess.Popen(srt_push_cmd(feed, f"srt://127.0.0.1:{slt_port}?linger=2")),
        ]
        time.sleep(min(SRT_WARMUP_SECONDS, args.seconds / 4))
        clock.mark()
        # steady state ends with the first push to finish, so both servers are measured over the same window
        while all(p.poll() is None for p in pushes):
            time.sleep(0.05)
        clock.mark()
        trax_mem, slt_mem = memory_kib(server.pid), memory_kib(native.pid)
        for p in pushes:
            p.wait(timeout=args.seconds * 3 + 30)
        clock.mark()
        wall = clock.marks[-1][0] - clock.marks[0][0]
        trax_frames = json.loads(server.stdout.readline())["frames"]
    finally:
        for p in pushes:
            if p.poll() is None:
                p.kill()
        native.terminate()  # it does not exit at its caller's end on its own
        try:
            native.wait(5)
        except subprocess.TimeoutExpired:
            native.kill()
        slt_file.close()
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    results = [
        Measure("trax (srt)", clock.percent(server.pid, 1, 2), clock.percent(server.pid, 0, 3),
                trax_mem[0] / 1024, trax_mem[1] / 1024, trax_frames, sent),
        Measure("srt-live-transmit", clock.percent(native.pid, 1, 2), clock.percent(native.pid, 0, 3),
                slt_mem[0] / 1024, slt_mem[1] / 1024, video_frames(slt_out), sent),
    ]  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nSRT: {SRT_FEED['size']} {SRT_FEED['bitrate']}bps, {args.seconds} s pushed in real time ({wall:.1f} s)")
    print(HEADER)
    for m in results:
        print(m.row())
    for name, pid, mem in (("trax", server.pid, trax_mem), ("srt-live-transmit", native.pid, slt_mem)):
        print(f"{name}: resident memory added by the publisher: {(mem[0] - idle[pid]) / 1024:.1f} MiB")
    steady = results[0].cpu_percent / max(results[1].cpu_percent, 0.01)
    whole = results[0].cpu_whole_percent / max(results[1].cpu_whole_percent, 0.01)
    print(f"CPU ratio trax / srt-live-transmit: {steady:.2f}x steady state, {whole:.2f}x whole push (target <= 1.5x)")


# --- RTMP --------------------------------------------------------------------------
#
# A 1080p 20 Mbps H.264 + AAC FLV feed (encoded once, pushed with ``ffmpeg -re -c copy``)
# goes at the same time to trax's RTMP listener (its own process: a runtime with only the
# rtmp transport and a hub reader per path that counts video frames) and to nginx with
# libnginx-mod-rtmp (one process, ``record`` writing what it receives to a file whose frames
# are counted afterwards: both servers do one counting consumer's work). Then the capacity
# run: 1, 2, 4, ... simultaneous 720p 4 Mbps publishers to trax until one round receives
# less than 99% of the frames of some publisher.

RTMP_FEED = {"size": "1920x1080", "rate": 30, "bitrate": "20M"}
RTMP_CAPACITY_FEED = {"size": "1280x720", "rate": 30, "bitrate": "4M"}
RTMP_WARMUP_SECONDS = 3.0


def rtmp_feed(seconds: int, cache: Path, spec: dict[str, object]) -> Path:
    """An H.264 + AAC FLV feed at ``spec``'s size and bitrate (encoded once per length, then reused)."""
    size, rate, br = spec["size"], spec["rate"], spec["bitrate"]
    out = cache / f"rtmp-feed-{size}-{br}-{seconds}s.flv"
    if out.exists():
        return out
    need("ffmpeg")
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds},noise=alls=30:allf=t",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p",
        "-b:v", str(br), "-maxrate", str(br), "-bufsize", str(br), "-x264-params", "nal-hrd=cbr",
        "-c:a", "aac", "-b:a", "128k", "-f", "flv", str(out) + ".part",
    ]  # fmt: skip
    print(f"encoding the {size} {br}bps RTMP feed ({seconds} s) once ...", flush=True)
    subprocess.run(cmd, check=True)
    os.replace(str(out) + ".part", out)
    return out


def rtmp_push_cmd(feed: Path, url: str) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(feed), "-c", "copy",
            "-f", "flv", url]  # fmt: skip


async def _rtmp_server(port: int, publishers: int) -> None:
    """The trax side (own process): rtmp only; prints the URLs, then frames per path when stdin closes."""
    from trax.runtime import Runtime
    from trax.services import Principal
    from trax.settings import load_settings

    settings = load_settings(
        None,
        storage={"backend": "memory"},
        blobs={"backend": "memory"},
        security={"secret_key": "benchmark-" + "x" * 40},
        log_level="warning",
        ingest={"host": "127.0.0.1", "rtmp": {"enabled": True, "port": port}},
    )
    async with Runtime(settings) as rt:
        await rt.start_transports()
        acct = await rt.services.accounts.create("bench")
        op = Principal.operator(acct.id)
        studio = await rt.services.studios.create(op, name="bench")
        frames: dict[str, int] = {}
        urls: list[str] = []

        async def count(path: str) -> None:
            async with rt.hub.open_reader(path, max_queue=100_000) as reader:
                tracks = await reader.tracks()
                video = next(t.index for t in tracks if t.kind == "video")
                async for packet in reader:
                    frames[path] += packet.track == video

        tasks = []
        for i in range(publishers):
            source = await rt.services.sources.create(op, studio.id, name=f"feed {i}", kind="rtmp")
            creds = await rt.media_tokens.mint(path=source.path, action="publish", audience="trax-ingest")
            frames[source.path] = 0
            urls.append(f"rtmp://127.0.0.1:{port}/{source.path}?user=trax&pass={creds.token}")
            tasks.append(asyncio.create_task(count(source.path)))
        print(json.dumps({"urls": urls}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(json.dumps({"frames": list(frames.values())}), flush=True)
        for t in tasks:
            t.cancel()


class _RtmpTrax:
    """A trax RTMP server process for ``publishers`` paths."""

    def __init__(self, publishers: int) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "_rtmp-server", str(self.port), str(publishers)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.urls: list[str] = json.loads(self.proc.stdout.readline())["urls"]

    def frames(self) -> list[int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        return list(json.loads(self.proc.stdout.readline())["frames"])

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _rtmp_nginx(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    nginx = need("nginx") if shutil.which("nginx") else need("/usr/sbin/nginx")
    module = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
    if not module.exists():
        sys.exit("libnginx-mod-rtmp is not installed (Debian: see .ci/run)")
    port = free_port()
    (work / "logs").mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(
        f"load_module {module};\n"
        f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {work}/nginx.pid;\n"
        f"error_log {work}/logs/error.log warn;\nevents {{ worker_connections 1024; }}\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;\n"
        f"  application inputs {{ live on; record all; record_path {work}; record_unique off; }} }} }}\n"
    )
    proc = subprocess.Popen([nginx, "-p", str(work), "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    proc.kill()
    sys.exit("nginx did not start")


def _wait_pushes(
    pushes: list[subprocess.Popen[bytes]], pids: list[int], limit: float, *, first_only: bool = False
) -> dict[int, int]:
    """Wait for every push (or the first to end); the largest RSS (KiB) each watched process reached meanwhile."""
    peak = dict.fromkeys(pids, 0)
    deadline = time.monotonic() + limit
    running = all if first_only else any
    while running(p.poll() is None for p in pushes) and time.monotonic() < deadline:
        for pid in pids:
            peak[pid] = max(peak[pid], memory_kib(pid)[0])
        time.sleep(0.25)
    if first_only:
        return peak
    for p in pushes:
        if p.poll() is None:
            p.kill()
            p.wait()
    return peak


def run_rtmp(args: argparse.Namespace) -> None:
    need("ffmpeg")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    feed = rtmp_feed(args.seconds, cache, RTMP_FEED)
    sent = video_frames(feed)
    work = Path(tempfile.mkdtemp(prefix="trax-bench-rtmp-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    trax = _RtmpTrax(1)
    native, nginx_port = _rtmp_nginx(work)
    try:
        time.sleep(0.5)
        pids = [trax.proc.pid, native.pid]
        idle = {pid: memory_kib(pid)[0] for pid in pids}
        clock = CpuClock(pids)
        clock.mark()
        pushes = [
            subprocess.Popen(rtmp_push_cmd(feed, trax.urls[0])),
            subprocess.Popen(rtmp_push_cmd(feed, f"rtmp://127.0.0.1:{nginx_port}/inputs/bench")),
        ]
        time.sleep(min(RTMP_WARMUP_SECONDS, args.seconds / 4))
        clock.mark()
        # steady state ends with the first push to finish, so both servers are measured over the same window
        peak = _wait_pushes(pushes, pids, args.seconds * 3 + 30, first_only=True)
        clock.mark()
        peak = {
            pid: max(v, w) for (pid, v), w in zip(peak.items(), _wait_pushes(pushes, pids, 30).values(), strict=True)
        }
        clock.mark()
        wall = clock.marks[-1][0] - clock.marks[0][0]
        trax_frames = trax.frames()[0]
    finally:
        trax.stop()
        native.terminate()
        try:
            native.wait(5)
        except subprocess.TimeoutExpired:
            native.kill()
    nginx_frames = video_frames(work / "bench.flv")
    shutil.rmtree(work, ignore_errors=True)
    tp, np_ = trax.proc.pid, native.pid
    results = [
        Measure("trax (rtmp)", clock.percent(tp, 1, 2), clock.percent(tp, 0, 3), peak[tp] / 1024, peak[tp] / 1024,
                trax_frames, sent),
        Measure("nginx-rtmp", clock.percent(np_, 1, 2), clock.percent(np_, 0, 3), peak[np_] / 1024,
                peak[np_] / 1024, nginx_frames, sent),
    ]  # fmt: skip
    print(f"\nRTMP: {RTMP_FEED['size']} {RTMP_FEED['bitrate']}bps, {args.seconds} s pushed in real time ({wall:.1f} s)")
    print(HEADER)
    for m in results:
        print(m.row())
    for pid, name in ((trax.proc.pid, "trax"), (native.pid, "nginx-rtmp")):
        print(f"{name}: resident memory added by the publisher: {(peak[pid] - idle[pid]) / 1024:.1f} MiB")
    steady = results[0].cpu_percent / max(results[1].cpu_percent, 0.01)
    whole = results[0].cpu_whole_percent / max(results[1].cpu_whole_percent, 0.01)
    print(f"CPU ratio trax / nginx-rtmp: {steady:.2f}x steady state, {whole:.2f}x whole push (target <= 3x)")
    print(f"load average (1 min): {os.getloadavg()[0]:.1f}")
    rtmp_capacity(args, cache)


def rtmp_capacity(args: argparse.Namespace, cache: Path) -> None:
    """Double the number of simultaneous 4 Mbps publishers until a round drops below 99% of frames."""
    seconds = min(args.seconds, 15)
    feed = rtmp_feed(seconds, cache, RTMP_CAPACITY_FEED)
    sent = video_frames(feed)
    spec = f"{RTMP_CAPACITY_FEED['size']} {RTMP_CAPACITY_FEED['bitrate']}bps"
    print(f"\nRTMP capacity: {spec} publishers, {seconds} s each")
    columns = f"{'steady CPU %':>12} {'RSS MiB':>8} {'MiB/pub':>8} {'worst frames':>14} {'>= 99%':>7} {'push s':>7}"
    print(f"{'publishers':>10} {columns}")
    held = 0
    n = max(1, args.rtmp_min_publishers)
    while n <= args.rtmp_max_publishers:
        trax = _RtmpTrax(n)
        try:
            time.sleep(0.5)
            pid = trax.proc.pid
            idle = memory_kib(pid)[0]
            clock = CpuClock([pid])
            started = time.monotonic()
            pushes = [subprocess.Popen(rtmp_push_cmd(feed, url)) for url in trax.urls]
            time.sleep(min(RTMP_WARMUP_SECONDS, seconds / 4))
            clock.mark()
            peak = _wait_pushes(pushes, [pid], seconds * 4 + 30, first_only=True)[pid]
            clock.mark()
            peak = max(peak, _wait_pushes(pushes, [pid], 30)[pid])
            took = time.monotonic() - started  # > the feed's length: the clients could not keep real time
            cpu = clock.percent(pid, 0, 1)
            time.sleep(0.5)
            frames = trax.frames()
        finally:
            trax.stop()
        worst = min(frames)
        ok = all(f >= 0.99 * sent for f in frames)
        print(f"{n:>10} {cpu:>12.1f} {peak / 1024:>8.1f} {(peak - idle) / 1024 / n:>8.2f} {worst:>7d}/{sent:<6d}"
              f" {'yes' if ok else 'no':>7} {took:>7.1f}", flush=True)  # fmt: skip
        if not ok:
            break
        held = n
        n *= 2
    print(f"trax held {held} simultaneous 4 Mbps RTMP publishers with >= 99% of frames received", end="")
    print(f" (load average {os.getloadavg()[0]:.1f})")


SRT_READERS_FEED = {"size": "1280x720", "rate": 30, "bitrate": "4M"}


def _srt_push_once(feed: Path, seconds: int, readers: int, work: Path) -> tuple[float, float, int, list[int]]:
    """One trax server, ``readers`` ffmpeg SRT players, one push.

    Returns (server CPU % in steady state, RSS MiB, frames the hub saw, frames each player decoded).
    """
    port = free_port(socket.SOCK_DGRAM)
    server = subprocess.Popen(
        [sys.executable, __file__, "_srt-server", str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    players: list[subprocess.Popen[bytes]] = []
    outs = [work / f"player-{readers}-{i}.ts" for i in range(readers)]
    push: subprocess.Popen[bytes] | None = None
    try:
        assert server.stdout is not None and server.stdin is not None
        ids = json.loads(server.stdout.readline())
        for out in outs:  # they connect first and wait for the publisher, so they see the whole feed
            url = f"srt://127.0.0.1:{port}?streamid={ids['read_streamid']}"
            players.append(subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", url, "-c", "copy",
                 "-f", "mpegts", str(out)],
                stderr=subprocess.DEVNULL,  # each prints an I/O error when the stream ends; frames are counted
            ))  # fmt: skip
        time.sleep(1.0 + 0.1 * readers)
        clock = CpuClock([server.pid])
        clock.mark()
        push = subprocess.Popen(srt_push_cmd(feed, f"srt://127.0.0.1:{port}?streamid={ids['streamid']}&linger=2"))
        time.sleep(min(SRT_WARMUP_SECONDS, seconds / 4))
        clock.mark()
        push.wait(timeout=seconds * 3 + 30)
        clock.mark()
        rss = memory_kib(server.pid)[0] / 1024
        hub_frames = json.loads(server.stdout.readline())["frames"]
        for p in players:
            p.wait(timeout=30)
    finally:
        for p in [*players, *([push] if push else [])]:
            if p.poll() is None:
                p.kill()
                p.wait()
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    return clock.percent(server.pid, 1, 2), rss, hub_frames, [video_frames(o) for o in outs]


def run_srt_readers(args: argparse.Namespace) -> None:
    """One 720p 4 Mbps SRT publisher read by N ffmpeg SRT players (remux only): server CPU per player."""
    need("ffmpeg")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    feed = srt_feed(args.seconds, cache, SRT_READERS_FEED)
    sent = video_frames(feed)
    work = Path(
        tempfile.mkdtemp(prefix="trax-bench-srt-readers-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    try:
        base_cpu, base_rss, base_frames, _ = _srt_push_once(feed, args.seconds, 0, work)
        cpu, rss, frames, played = _srt_push_once(feed, args.seconds, args.readers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size, br = SRT_READERS_FEED["size"], SRT_READERS_FEED["bitrate"]
    print(f"\nSRT readers: {size} {br}bps, {args.seconds} s, {sent} video frames sent (load {os.getloadavg()[0]:.1f})")
    print(f"publisher only:    server CPU {base_cpu:5.2f} %  RSS {base_rss:6.1f} MiB  hub frames {base_frames}")
    print(f"+ {args.readers:2d} SRT players: server CPU {cpu:5.2f} %  RSS {rss:6.1f} MiB  hub frames {frames}")
    per = (cpu - base_cpu) / max(args.readers, 1)
    print(f"per player: {per:.2f} % CPU, {(rss - base_rss) / max(args.readers, 1):.2f} MiB")
    print(f"frames decoded by the players: min {min(played)} / max {max(played)} of {sent}")


# --- entry point ------------------------------------------------------------------------

BENCHMARKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "srt": run_srt,
    "srt-readers": run_srt_readers,
    "rtmp": run_rtmp,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_srt-server"]:
        asyncio.run(_srt_server(int(argv[1])))
        return
    if argv[:1] == ["_rtmp-server"]:
        asyncio.run(_rtmp_server(int(argv[1]), int(argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--seconds", type=int, default=20, help="length of each pushed feed")
    parser.add_argument("--readers", type=int, default=10, help="SRT players of one publisher (srt-readers)")
    parser.add_argument("--rtmp-min-publishers", type=int, default=1, help="first round of the RTMP capacity run")
    parser.add_argument("--rtmp-max-publishers", type=int, default=64, help="upper bound of the RTMP capacity run")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "trax-bench"), help="feed cache")
    args = parser.parse_args(argv)
    unknown = [w for w in args.which if w not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}")
    for name in args.which or list(BENCHMARKS):
        BENCHMARKS[name](args)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
