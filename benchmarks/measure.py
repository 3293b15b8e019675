"""What the benchmark scripts share: ``/proc`` readings, stopping a server, reading wrk's report.

Imported by sibling scripts run as ``python benchmarks/<name>.py`` (their folder
is then first on ``sys.path``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, all threads (children not included)."""
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


def stop_group(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM the process group a server was started in (``start_new_session``), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_ms(text: str) -> float:
    """One of wrk's durations (``512.00us``, ``4.87ms``, ``1.02s``) in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms; run wrk with ``--latency``), requests, non-2xx answers and socket errors."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(done.group(1)) if done else 0,
        "p50": wrk_ms(p50.group(1)) if p50 else float("nan"),
        "p99": wrk_ms(p99.group(1)) if p99 else float("nan"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": sum(int(g) for g in errs.groups()) if errs else 0,
    }
