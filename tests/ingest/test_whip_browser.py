"""Headless Chromium publishes over WHIP from a page on another origin and plays it back over WHEP.

Everything runs inside ``unshare -n`` (a network namespace with only ``lo``),
so ICE can only use loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import require, require_tool

pytestmark = pytest.mark.slow

DRIVER = Path(__file__).parent / "browser" / "chromium_driver.py"


@pytest.mark.parametrize("codec", ["h264", "vp8"])
def test_chromium_whip_publish_and_whep_play_across_origins(tmp_path: Path, codec: str) -> None:
    require_tool("chromium", why="the browser WHIP/WHEP test")
    unshare = require_tool("unshare", why="a private network namespace for the browser test")
    require_tool("ip", why="bringing up lo inside the namespace")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10)
    require(probe.returncode == 0, "unshare -n is not permitted here (needs root or user namespaces)")
    proc = subprocess.run(
        [unshare, "-n", sys.executable, str(DRIVER), str(tmp_path), codec],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    context = json.dumps(result, indent=1)
    assert result["pageOrigin"] != result["whipOrigin"]  # a cross-origin page: CORS is exercised
    assert result.get("phase") == "done", context
    assert result["whip"]["status"] == 201 and result["whep"]["status"] == 201, context
    # the browser could read the headers WHIP/WHEP clients need across origins
    assert result["whip"]["location"] and result["whip"]["etag"] and result["whip"]["requestId"], context
    assert result["framesEncoded"] > 30, context
    assert result["framesDecoded"] >= 60, context  # decoded in the browser, per getStats
    assert result["codec"] == {"h264": "video/H264", "vp8": "video/VP8"}[codec], context
    assert result["deleteWhep"] == 200 and result["deleteWhip"] == 200, context
    assert result["statuses"] == ["connecting", "live", "idle"], context
