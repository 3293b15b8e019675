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

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


# --- shared: /proc readings ------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB."""
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


@dataclass
class Measure:
    name: str
    cpu_percent: float
    rss_mib: float
    peak_rss_mib: float
    frames: int
    frames_sent: int

    def row(self) -> str:
        share = 100.0 * self.frames / self.frames_sent if self.frames_sent else 0.0
        return (
            f"{self.name:<22} {self.cpu_percent:7.1f} {self.rss_mib:9.1f} {self.peak_rss_mib:9.1f}"
            f" {self.frames:7d}/{self.frames_sent:<5d} ({share:5.1f}%)"
        )


HEADER = f"{'server':<22} {'CPU %':>7} {'RSS MiB':>9} {'peak MiB':>9} {'video frames received':>22}"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def srt_feed(seconds: int, cache: Path) -> Path:
    """The 1080p 20 Mbps H.264 + AAC MPEG-TS test feed (encoded once per length, then reused)."""
    out = cache / f"srt-feed-1080p-20M-{seconds}s.ts"
    if out.exists():
        return out
    need("ffmpeg")
    rate, size, br = SRT_FEED["rate"], SRT_FEED["size"], SRT_FEED["bitrate"]
    # noise keeps the encoder at the target rate (a plain test pattern compresses to almost nothing)
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds},noise=alls=30:allf=t",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p",
        "-b:v", br, "-maxrate", br, "-bufsize", br, "-x264-params", "nal-hrd=cbr",
        "-c:a", "aac", "-b:a", "128k", "-muxrate", "22M", "-f", "mpegts", str(out) + ".part",
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
        frames = 0
        async with rt.hub.open_reader(source.path, max_queue=100_000) as reader:
            print(json.dumps({"streamid": f"publish:{source.path}:trax:{creds.token}"}), flush=True)
            tracks = await reader.tracks()
            video = next(t.index for t in tracks if t.kind == "video")
            async for packet in reader:
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
    trax_port, slt_port = free_udp_port(), free_udp_port()
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
        start = {p.pid: cpu_seconds(p.pid) for p in (server, native)}
        t0 = time.monotonic()
        pushes = [
            subprocess.Popen(srt_push_cmd(feed, f"srt://127.0.0.1:{trax_port}?streamid={streamid}&linger=2")),
            subprocess.Popen(srt_push_cmd(feed, f"srt://127.0.0.1:{slt_port}?linger=2")),
        ]
        for p in pushes:
            p.wait(timeout=args.seconds * 3 + 30)
        wall = time.monotonic() - t0
        cpu = {pid: 100.0 * (cpu_seconds(pid) - s) / wall for pid, s in start.items()}
        trax_mem, slt_mem = memory_kib(server.pid), memory_kib(native.pid)
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
        Measure("trax (srt)", cpu[server.pid], trax_mem[0] / 1024, trax_mem[1] / 1024, trax_frames, sent),
        Measure("srt-live-transmit", cpu[native.pid], slt_mem[0] / 1024, slt_mem[1] / 1024,
                video_frames(slt_out), sent),
    ]  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nSRT: {SRT_FEED['size']} {SRT_FEED['bitrate']}bps, {args.seconds} s pushed in real time ({wall:.1f} s)")
    print(HEADER)
    for m in results:
        print(m.row())
    base = max(results[1].cpu_percent, 0.1)
    print(f"CPU ratio trax / srt-live-transmit: {results[0].cpu_percent / base:.2f}x (target <= 1.5x)")


# --- entry point ------------------------------------------------------------------------

BENCHMARKS: dict[str, Callable[[argparse.Namespace], None]] = {
    "srt": run_srt,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_srt-server"]:
        asyncio.run(_srt_server(int(argv[1])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--seconds", type=int, default=20, help="length of each pushed feed")
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
