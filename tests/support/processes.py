"""Child processes a test starts and must always end, however the test exits."""

from __future__ import annotations

import subprocess


def end(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """TERM, then KILL after ``grace`` seconds; reaps the child either way."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
