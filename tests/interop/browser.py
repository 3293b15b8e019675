"""Headless Chromium running the npm WHIP/WHEP clients (tests/interop/web), reporting what getStats saw.

The page is served from its own loopback origin (so every WHIP/WHEP request is cross-origin, as on a
real site) by a small HTTP server in this process, which also collects the page's reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.ingest.browser.chromium_driver import CHROMIUM_FLAGS
from tests.support.tools import require, require_tool

WEB = Path(__file__).parent / "web"
PACKAGES = ("@eyevinn/whip-web-client", "@eyevinn/webrtc-player", "esbuild")


def build_bundle(out_dir: Path) -> Path:
    """esbuild the page's script from the installed npm packages (offline once ``npm ci`` ran)."""
    require_tool("node", why="esbuild bundles the npm WHIP/WHEP clients for the browser")
    missing = [p for p in PACKAGES if not (WEB / "node_modules" / p / "package.json").exists()]
    require(not missing, f"npm packages {missing} are not installed: run `npm ci --prefix tests/interop/web`")
    bundle = out_dir / "bundle.js"
    subprocess.run(
        [str(WEB / "node_modules" / ".bin" / "esbuild"), str(WEB / "entry.js"), "--bundle", "--format=iife",
         "--log-level=error", f"--outfile={bundle}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return bundle


class PageServer:
    """Serves page.html and the bundle; keeps every report the page POSTs."""

    def __init__(self, bundle: Path) -> None:
        self.reports: list[dict[str, Any]] = []
        self.finished = threading.Event()
        files = {"/page.html": (WEB / "page.html", "text/html"), "/bundle.js": (bundle, "text/javascript")}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = files.get(self.path.split("?", 1)[0])
                if found is None:
                    self.send_error(404)
                    return
                body = found[0].read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", found[1])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                with contextlib.suppress(ValueError):
                    report = json.loads(body)
                    owner.reports.append(report)
                    if report.get("phase") in ("done", "error"):
                        owner.finished.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def last(self) -> dict[str, Any]:
        return dict(self.reports[-1]) if self.reports else {}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


async def run_page(bundle: Path, workdir: Path, query: Mapping[str, str], *, limit: float) -> dict[str, Any]:
    """Open the page with ``query`` in a fresh headless Chromium; its last report once done (or at ``limit``)."""
    chromium = require_tool("chromium", why="the browser WHIP/WHEP clients")
    pages = PageServer(bundle)
    profile = workdir / f"chromium-{time.monotonic_ns()}"
    proc = await asyncio.create_subprocess_exec(
        chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"{pages.origin}/page.html?{urlencode(query)}",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=(workdir / f"{profile.name}.log").open("wb"), start_new_session=True,
    )  # fmt: skip
    finished = asyncio.ensure_future(asyncio.to_thread(pages.finished.wait, limit))
    exited = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait({finished, exited}, return_when=asyncio.FIRST_COMPLETED)
        result = pages.last()
        if not pages.finished.is_set():
            result["timeout"] = f"no final report within {limit:.0f}s (Chromium exit {proc.returncode})"
        return result
    finally:
        # the whole group: Chromium's renderer and utility processes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        exited.cancel()
        pages.finished.set()  # releases the waiting thread
        await asyncio.gather(finished, return_exceptions=True)
        pages.close()
