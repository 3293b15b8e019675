"""A WHEP viewer joining a Chromium WHIP publish >= 10 s late plays within 2 s (the keyframe request reaches Chrome)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import require, require_tool

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).parent / "browser" / "late_joiner_driver.py"


def test_late_whep_viewer_of_a_chromium_publisher_plays_within_two_seconds(tmp_path: Path) -> None:
    require_tool("chromium", why="a browser WHIP publisher (sends RTX)")
    unshare = require_tool("unshare", why="a private network namespace for the browser test")
    require_tool("ip", why="bringing up lo inside the namespace")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10)
    require(probe.returncode == 0, "unshare -n is not permitted here (needs root or user namespaces)")
    root = Path(__file__).parents[2]
    proc = subprocess.run(
        [unshare, "-n", sys.executable, str(DRIVER), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    context = json.dumps(result, indent=1)
    assert not result.get("timeout"), context
    assert result["page"].get("offerHasRtx"), context  # the case that broke: Chrome announced an RTX SSRC
    assert result["joinedAfter"] >= 10, context
    assert result["framesDecoded"] >= 10, context
    # Chrome counted the keyframe request on its video stream (a PLI to the RTX SSRC is not counted: ignored)
    assert result["page"]["pliCount"] > result["before"].get("pliCount", 0), context
    assert result["timeToFirstFrame"] is not None and result["timeToFirstFrame"] <= 2.0, context
