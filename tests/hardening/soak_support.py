"""The legitimate side of the soak test: a publisher, a frame-counting reader, a paging client, an RSS sampler.

Each runs in its own process or thread and records what it saw with ``time.monotonic()`` stamps, so the
test can cut every figure to the same window (the attack) afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import httpx

from tests.support.processes import end

FPS = 30


def publisher_cmd(ffmpeg: str, url: str, seconds: float) -> list[str]:
    """A real-time RTMP encoder: a 30 fps test pattern (1 s GOPs, no B-frames) with a tone."""
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", str(FPS),
        "-c:a", "aac", "-b:a", "64k",
        "-f", "flv", url,
    ]  # fmt: skip


def reader_cmd(ffmpeg: str, url: str) -> list[str]:
    """Decode the path's video and print one CRC line per decoded frame, as it is decoded.

    ``-fps_mode passthrough`` matters: the default would duplicate frames to fill gaps and hide a loss.
    """
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", url,
        "-map", "0:v:0", "-fps_mode", "passthrough", "-flush_packets", "1", "-f", "framecrc", "-",
    ]  # fmt: skip


@contextmanager
def process(
    cmd: list[str], stderr: Path, *, stdout: int | None = subprocess.DEVNULL
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process that is always ended (TERM, then KILL) when the block exits, however it exits.

    Its stderr goes to a file: a pipe nobody reads would block a chatty ffmpeg once 64 KiB are written.
    """
    with stderr.open("ab") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=err)
    try:
        yield proc
    finally:
        end(proc)


_TB = re.compile(rb"^#tb 0: (\d+)/(\d+)")


@dataclass
class FrameLog:
    """Frames a reader decoded: their stream index (pts x fps, so the publisher's frame number) and arrival."""

    frames: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def latest(self) -> int | None:
        with self.lock:
            return self.frames[-1][1] if self.frames else None

    def count(self) -> int:
        with self.lock:
            return len(self.frames)

    def indexes_in(self, first: int, last: int) -> set[int]:
        """Distinct frame numbers received in ``(first, last]``."""
        with self.lock:
            return {n for _, n in self.frames if first < n <= last}


def follow_framecrc(proc: subprocess.Popen[bytes], log: FrameLog) -> threading.Thread:
    """Parse ``framecrc`` lines from ``proc`` as they come; the pts becomes the publisher's frame number."""

    def run() -> None:
        assert proc.stdout is not None
        tb = Fraction(1, 1000)
        for line in proc.stdout:
            if match := _TB.match(line):
                tb = Fraction(int(match[1]), int(match[2]))
                continue
            if line.startswith(b"#"):
                continue
            parts = line.split(b",")
            if len(parts) < 3 or parts[0].strip() != b"0":
                continue
            index = round(int(parts[2]) * tb * FPS)
            with log.lock:
                log.frames.append((time.monotonic(), index))

    thread = threading.Thread(target=run, name="soak-reader", daemon=True)
    thread.start()
    return thread


@dataclass
class Request:
    started: float
    seconds: float
    status: int  # 0: no answer (timeout, reset)


class PagingClient:
    """A legitimate API client walking ``/v1/studios`` page by page, on a fresh connection each request.

    A fresh connection per request is deliberate: a slowloris attack hurts *new* connections (accept
    queue, connection caps), which a single kept-alive connection would never notice.
    """

    def __init__(self, base_url: str, key: str, *, page_size: int = 5, pause: float = 0.1) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
        self.page_size = page_size
        self.pause = pause
        self.requests: list[Request] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-client", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        cursor = ""
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=5.0) as http:
            while not self._stop.is_set():
                params = {"limit": str(self.page_size), **({"cursor": cursor} if cursor else {})}
                t0 = time.monotonic()
                status = 0
                try:
                    resp = http.get("/v1/studios", params=params)
                    status = resp.status_code
                    cursor = (resp.json().get("nextCursor") or "") if status == 200 else ""
                except (httpx.HTTPError, ValueError):
                    cursor = ""
                # a request that failed counts with the time it took: a timeout is a 5 s latency, not a gap
                self.requests.append(Request(t0, time.monotonic() - t0, status))
                self._stop.wait(self.pause)

    def window(self, start: float, end: float) -> list[Request]:
        return [r for r in self.requests if start <= r.started < end]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: with few samples, the worst ones are what counts)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]


def vm_rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB, from /proc (what the kernel charges the process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class RssSampler:
    """VmRSS of one process every ``period`` seconds, with its time."""

    def __init__(self, pid: int, period: float = 0.5) -> None:
        self.pid = pid
        self.period = period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-rss", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), vm_rss_mb(self.pid)))
            except (OSError, RuntimeError):
                return  # the process is gone
            self._stop.wait(self.period)

    def peak(self, start: float, end: float) -> float:
        return max((mb for t, mb in self.samples if start <= t <= end), default=float("nan"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far (/proc/PID/stat fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces; skip past it
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def join_probe_cmd(ffmpeg: str, url: str, frames: int) -> list[str]:
    """A new viewer: read the path and decode ``frames`` video frames, then exit 0 (non-zero if refused)."""
    quiet = ["-hide_banner", "-loglevel", "error", "-nostdin"]
    return [ffmpeg, *quiet, "-i", url, "-map", "0:v:0", "-frames:v", str(frames), "-f", "null", "-"]


def run_join_probe(cmd: list[str], within: float) -> tuple[bool, float, str]:
    """(decoded its frames, seconds it took, its stderr); killed after ``within`` seconds."""
    t0 = time.monotonic()
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=within, check=False)
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - t0, "timed out"
    return done.returncode == 0, time.monotonic() - t0, done.stderr.decode(errors="replace")
