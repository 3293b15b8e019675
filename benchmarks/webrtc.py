"""WHEP fan-out benchmark: one 640x480@30 WHIP publisher, N WHEP viewers, one ``trax serve``.

    .venv/bin/python benchmarks/webrtc.py --viewers 20 --seconds 20

Starts a real ``trax serve`` (SQLite storage in a temporary directory, WHIP on
loopback), publishes a pre-encoded 640x480@30 H.264 (baseline, no B-frames)
file over WHIP with aiortc in passthrough (so the publisher costs almost
nothing), and opens N aiortc WHEP viewers spread over worker processes. Viewers
count the video frames they reassemble (``--decode`` makes them decode too,
which costs the *client* a decoder each). Prints, for the measurement window:
frames per viewer, loss against what the publisher sent in the same window,
the server's CPU (share of one core) and resident memory per viewer, and the
time from each viewer's POST to its first frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml
from measure import stop_group

from trax.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def make_clip(path: Path, seconds: int, width: int = 640, height: int = 480, fps: int = 30) -> None:
    """A moving test pattern, H.264 baseline without B-frames (what WebRTC passthrough needs), in MPEG-TS."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # noise keeps the encoder at the target rate (a flat pattern would cost a fraction of it)
        kbps = 1500
        stream.options = {
            "profile": "baseline",
            "preset": "ultrafast",
            "tune": "zerolatency",
            "g": str(fps * 2),
            "x264-params": f"vbv-maxrate={kbps}:vbv-bufsize={kbps // 2}",
        }
        stream.bit_rate = kbps * 1000
        y, x = np.mgrid[0:height, 0:width]
        base = ((x + y) % 256).astype(np.int16)
        rng = np.random.default_rng(1)
        for n in range(seconds * fps):
            noisy = np.roll(base, n * 4, axis=1) + rng.integers(-12, 12, size=base.shape, dtype=np.int16)
            frame = av.VideoFrame.from_ndarray(np.clip(noisy, 0, 255).astype(np.uint8), format="gray")
            frame = frame.reformat(format="yuv420p")
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


async def provision(config: Path) -> dict[str, str]:
    from trax.runtime import Runtime
    from trax.services import Principal

    async with Runtime.from_file(str(config)) as rt:
        acct = await rt.services.accounts.create("bench")
        op = Principal.operator(acct.id)
        studio = await rt.services.studios.create(op, name="bench")
        src = await rt.services.sources.create(op, studio.id, name="cam", kind="whip")
        pub = await rt.media_tokens.mint(path=src.path, action="publish", ttl=3600)
        read = await rt.media_tokens.mint(path=src.path, action="read", ttl=3600)
    return {"path": src.path, "publish": pub.token, "read": read.token}


async def serve_ingest(config: Path) -> None:
    """The ingest plane alone (runtime + transports), until SIGTERM: what the per-viewer figures measure."""
    import logging

    from trax.runtime import Runtime

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Runtime.from_file(str(config)) as rt:
        await rt.start_transports()
        await stop.wait()


# --- worker: M viewers in one process ---------------------------------------------------------


def udp_receive_buffer_errors() -> int:
    """The kernel's count of UDP datagrams dropped because a socket's receive buffer was full (all processes)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def enlarge_receive_buffers(pc: Any, size: int = 4 * 1024 * 1024) -> None:
    """Client-side tuning: a viewer process that is descheduled for a moment must not lose the burst.

    Reaches into aioice's sockets (private attributes; fine for a benchmark client, never for the server).
    """
    for t in pc.getTransceivers():
        connection = getattr(t.receiver.transport.transport, "_connection", None)
        for protocol in getattr(connection, "_protocols", []):
            sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


async def viewers_worker(url: str, token: str, count: int, start: float, end: float, decode: bool) -> dict[str, Any]:
    import httpx

    from trax.ingest.whip.client import WhepPlayer
    from trax.ingest.whip.ice import HostCandidates

    HostCandidates(["127.0.0.1"]).install()
    async with httpx.AsyncClient(timeout=30) as http:
        players = [WhepPlayer(url, token, decode=decode, audio=False, http=http) for _ in range(count)]
        for p in players:
            await p.start()
            enlarge_receive_buffers(p.pc)
        me = psutil.Process()
        await asyncio.sleep(max(0.0, start - time.time()))
        first, cpu0, t0 = [p.frames["video"] for p in players], me.cpu_times(), time.monotonic()
        await asyncio.sleep(max(0.0, end - time.time()))
        last, cpu1, t1 = [p.frames["video"] for p in players], me.cpu_times(), time.monotonic()
        ttff = [p.time_to_first_frame for p in players]
        for p in players:
            await p.close()
    busy = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
    return {"frames": [b - a for a, b in zip(first, last, strict=True)], "ttff": ttff, "cpu": busy}


# --- orchestrator ----------------------------------------------------------------------------------


async def publish_and_measure(
    args: argparse.Namespace, base: str, creds: dict[str, str], server: psutil.Process
) -> dict[str, Any]:
    from aiortc.contrib.media import MediaPlayer

    from trax.ingest.whip.client import WhipPublisher
    from trax.ingest.whip.ice import HostCandidates

    HostCandidates(["127.0.0.1"]).install()
    player = MediaPlayer(str(args.clip), decode=False)
    sent = [0]
    track = player.video
    original_recv = track.recv

    async def counting_recv() -> Any:
        packet = await original_recv()
        sent[0] += 1
        return packet

    track.recv = counting_recv
    url = f"{base}/{creds['path']}"
    async with WhipPublisher(url + "/whip", creds["publish"], track, video_codec="h264"):
        await asyncio.sleep(2)
        rss_before = server.memory_info().rss
        t0 = time.time() + args.connect_seconds
        start, end = t0 + args.warmup, t0 + args.warmup + args.seconds
        per_worker = [
            args.viewers // args.workers + (1 if i < args.viewers % args.workers else 0) for i in range(args.workers)
        ]
        procs = []
        for n in per_worker:
            if n == 0:
                continue
            cmd = [sys.executable, __file__, "--worker", url + "/whep", creds["read"], str(n), str(start), str(end)]
            if args.decode:
                cmd.append("--decode")
            procs.append(await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, cwd=ROOT))
        await asyncio.sleep(max(0.0, start - time.time()))
        sent_start, cpu_start, wall_start = sent[0], server.cpu_times(), time.monotonic()
        drops_start = udp_receive_buffer_errors()
        await asyncio.sleep(max(0.0, end - time.time()))
        sent_end, cpu_end, wall_end = sent[0], server.cpu_times(), time.monotonic()
        drops = udp_receive_buffer_errors() - drops_start
        rss_after = server.memory_info().rss
        outputs = [json.loads((await p.communicate())[0].decode().strip().splitlines()[-1]) for p in procs]
    track.stop()
    frames = [f for o in outputs for f in o["frames"]]
    ttff = [t for o in outputs for t in o["ttff"] if t is not None]
    expected = sent_end - sent_start
    cpu = (cpu_end.user + cpu_end.system - cpu_start.user - cpu_start.system) / (wall_end - wall_start)
    return {
        "viewers": args.viewers,
        "seconds": args.seconds,
        "publisherFrames": expected,
        "framesPerViewer": {"min": min(frames), "median": statistics.median(frames), "max": max(frames)},
        # a frame counted just past a window edge is not "negative loss": count only what is missing
        "lossPercent": round(100 * sum(max(0, expected - f) for f in frames) / (expected * len(frames)), 2)
        if frames and expected
        else None,
        "viewersWithFrames": sum(1 for f in frames if f > 0),
        "serverCpuPercentOfOneCore": round(100 * cpu, 1),
        "serverCpuPercentPerViewer": round(100 * cpu / max(1, args.viewers), 2),
        "serverRssMiB": round(rss_after / 2**20, 1),
        "serverRssPerViewerKiB": round((rss_after - rss_before) / 1024 / max(1, args.viewers), 1),
        "postToFirstFrameMs": {
            "median": round(1000 * statistics.median(ttff), 1) if ttff else None,
            "max": round(1000 * max(ttff), 1) if ttff else None,
        },
        "decodeInViewers": args.decode,
        # a viewer process near 100% is the client falling behind, not the server
        "viewerProcessCpuPercent": [round(100 * o["cpu"], 1) for o in outputs],
        "loadAverage": [round(x, 2) for x in os.getloadavg()],
        # datagrams the kernel dropped for full receive buffers in the window (any process on the box)
        "udpReceiveBufferDrops": drops,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=20, help="measurement window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connect-seconds", type=float, default=8.0, help="time allowed for all viewers to connect")
    parser.add_argument("--workers", type=int, help="viewer processes (default: one per 8 viewers)")
    parser.add_argument("--decode", action="store_true", help="viewers decode every frame too (client CPU)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--trax-serve",
        action="store_true",
        help="run the full `trax serve` (with /v1) instead of the ingest plane alone",
    )
    parser.add_argument("--serve", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=5, metavar=("URL", "TOKEN", "N", "START", "END"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_ingest(Path(args.serve)))
        return 0
    if args.workers is None:
        args.workers = max(1, -(-args.viewers // 8))
    if args.worker:
        url, token, n, start, end = args.worker
        print(json.dumps(asyncio.run(viewers_worker(url, token, int(n), float(start), float(end), args.decode))))
        return 0

    with tempfile.TemporaryDirectory(prefix="trax-bench-") as tmp:
        work = Path(tmp)
        args.clip = work / "clip.ts"
        make_clip(args.clip, int(args.connect_seconds + args.warmup + args.seconds + 10))
        whip_port = free_port()
        config = {
            "server": {"host": "127.0.0.1", "port": free_port()},
            "storage": {"backend": "sqlite", "options": {"path": str(work / "trax.db")}},
            "security": {"secret_key_file": str(work / "secret.key")},
            "log_level": "info",  # the server logs each WHEP session's sent/skipped packets at its end
            "ingest": {
                "whip": {"enabled": True, "port": whip_port, "host_candidates": ["127.0.0.1"], "reader_queue": 300}
            },
        }
        config_path = work / "trax.yaml"
        config_path.write_text(yaml.safe_dump(config))
        creds = asyncio.run(provision(config_path))
        log = (work / "server.log").open("wb")
        server_cmd = ["-m", "trax.cli", "serve"] if args.trax_serve else [__file__, "--serve"]
        proc = subprocess.Popen(
            [sys.executable, *server_cmd, str(config_path)],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    socket.create_connection(("127.0.0.1", whip_port), timeout=0.5).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        print((work / "server.log").read_text()[-3000:], file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            result = asyncio.run(
                publish_and_measure(args, f"http://127.0.0.1:{whip_port}", creds, psutil.Process(proc.pid))
            )
        finally:
            stop_group(proc, timeout=10)
        log_text = (work / "server.log").read_text(errors="replace")
        skipped = [int(m) for m in re.findall(r"WHEP session on \S+ ended: sent=\d+ skipped=(\d+)", log_text)]
        # packets the server itself skipped because a viewer lagged (as opposed to network or client loss)
        result["serverSkippedPackets"] = sum(skipped) if skipped else None
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
