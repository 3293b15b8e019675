"""Run inside ``unshare -n``: Chromium publishes over WHIP; an aiortc WHEP viewer joins >= 10 s later.

Chromium sends RTX (``a=ssrc-group:FID``) and, with its fake camera, makes keyframes only when asked, so the
late viewer plays only if trax's keyframe request (RTCP PLI) reaches the media SSRC. Prints one JSON line.
Usage: ``unshare -n python late_joiner_driver.py WORKDIR``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).parents[3]))

from tests.ingest.browser.chromium_driver import CHROMIUM_FLAGS, page_server

PAGE = (Path(__file__).parent / "whip_publish_page.html").read_bytes()
JOIN_AFTER = 10.0


async def main(workdir: Path) -> dict[str, Any]:
    import tests.ingest.browser.chromium_driver as driver
    from tests.ingest.whip_support import wait_for, whip_plane
    from trax.ingest.whip.client import WhepPlayer

    driver.PAGE = PAGE
    reports: list[dict[str, Any]] = []
    pages = page_server(reports, threading.Event())
    page_origin = f"http://127.0.0.1:{pages.server_address[1]}"
    result: dict[str, Any] = {}
    async with whip_plane(workdir, cors_origins=[page_origin]) as plane:
        src = await plane.source()
        query = urlencode(
            {"whip": plane.url(src.path, "whip"), "pub": await plane.token(src.path, "publish", audience="trax-talk")}
        )
        chromium = await asyncio.create_subprocess_exec(
            "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={workdir / 'chromium-profile'}",
            f"{page_origin}/page.html?{query}",
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "chromium.log").open("wb"),
        )
        try:
            await wait_for(lambda: (p := plane.rt.hub.publisher(src.path)) is not None and p.packets > 0, within=60)
            publisher = plane.rt.hub.publisher(src.path)
            assert publisher is not None
            started = time.monotonic()
            await asyncio.sleep(JOIN_AFTER)
            result["before"] = reports[-1] if reports else {}
            result["joinedAfter"] = time.monotonic() - started
            result["codec"] = publisher.tracks[0].codec
            read = await plane.token(src.path, "read", audience="trax-read")
            async with WhepPlayer(plane.url(src.path, "whep"), read, audio=False) as viewer:
                with contextlib.suppress(TimeoutError):  # reported as no frame, asserted by the test
                    await wait_for(lambda: viewer.frames["video"] > 0, within=6)
                result["timeToFirstFrame"] = viewer.time_to_first_frame
                await asyncio.sleep(2)  # the page reports its getStats every 0.5 s: let it see the PLI
                result["framesDecoded"] = viewer.frames["video"]
        except TimeoutError:
            result["timeout"] = True
        finally:
            chromium.kill()
            await chromium.wait()
            pages.shutdown()
        result["page"] = reports[-1] if reports else {}
    return result


if __name__ == "__main__":
    import json

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)  # a new namespace starts with lo down
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))), flush=True)
