"""Run inside ``unshare -n``: a trax WHIP endpoint, a page on another origin, headless Chromium.

Prints one JSON line with what the page reported (``getStats``) and what the
server saw (source status changes), then exits; every process it starts is
killed before it returns. Usage: ``unshare -n python chromium_driver.py WORKDIR [h264|vp8]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

PAGE = (Path(__file__).parent / "whip_page.html").read_bytes()
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # running as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def page_server(reports: list[dict[str, Any]], done: threading.Event) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(PAGE)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            with contextlib.suppress(ValueError):
                report = json.loads(body)
                reports.append(report)
                if report.get("phase") in ("done", "error"):
                    done.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def main(workdir: Path, video_codec: str) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parents[3]))
    from tests.ingest.whip_support import wait_for, whip_plane

    reports: list[dict[str, Any]] = []
    done = threading.Event()
    pages = page_server(reports, done)
    page_origin = f"http://127.0.0.1:{pages.server_address[1]}"
    statuses: list[str] = []
    result: dict[str, Any] = {}
    async with whip_plane(workdir, cors_origins=[page_origin], video_codecs=[video_codec]) as plane:
        src = await plane.source()

        async def on_event(e: Any) -> None:
            if e.type == "source.status_changed" and e.data["path"] == src.path:
                statuses.append(e.data["status"])

        plane.rt.bus.subscribe(on_event)
        query = urlencode(
            {
                "whip": plane.url(src.path, "whip"),
                "whep": plane.url(src.path, "whep"),
                "pub": await plane.token(src.path, "publish", audience="trax-talk"),
                "read": await plane.token(src.path, "read", audience="trax-read"),
            }
        )
        profile = workdir / "chromium-profile"
        chromium = await asyncio.create_subprocess_exec(
            "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"{page_origin}/page.html?{query}",
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "chromium.log").open("wb"),
        )
        try:
            await wait_for(done.is_set, within=90, step=0.2)
            # DELETE ended the publisher: its status goes back to idle
            await wait_for(lambda: statuses[-1:] == ["idle"], within=10)
        except TimeoutError:
            result["timeout"] = True
        finally:
            chromium.kill()
            await chromium.wait()
            pages.shutdown()
        result.update(reports[-1] if reports else {})
        result["statuses"] = statuses
        result["pageOrigin"] = page_origin
        result["whipOrigin"] = plane.base
    return result


if __name__ == "__main__":
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)  # a new namespace starts with lo down
    codec = sys.argv[2] if len(sys.argv) > 2 else "h264"
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), codec))), flush=True)
