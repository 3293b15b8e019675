"""The interop matrix: clients nobody here wrote, against one ``trax serve``, every protocol and direction.

A cell passes when the reading side decodes at least ``FRAMES`` video frames: for a publishing client,
ffmpeg reads the path back over RTMP; for a reading client, ffmpeg publishes over RTMP and the client
under test decodes. Cells that fail on purpose-built bugs elsewhere are left failing (never xfail):
the table printed at the end is the measured truth, and docs/interop.md records it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop import clients
from tests.interop.browser import run_page
from tests.interop.matrix import Cell
from tests.interop.processes import FRAMES, Client, ffmpeg_frames, gst_frames, running
from tests.interop.studio import Source, Trax
from tests.support.tools import require, require_tool
from trax.ingest.srt import libsrt

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PUBLISH = [
    Cell("ffmpeg", "rtmp", "publish"),
    Cell("ffmpeg", "rtmps", "publish"),
    Cell("ffmpeg", "srt", "publish"),
    Cell("ffmpeg (OBS server + stream key)", "rtmp", "publish"),
    Cell("ffmpeg (OBS server + stream key)", "rtmps", "publish"),
    Cell("GStreamer rtmp2sink", "rtmp", "publish"),
    Cell("GStreamer rtmp2sink", "rtmps", "publish"),
    Cell("GStreamer rtmpsink (librtmp)", "rtmp", "publish"),
    Cell("GStreamer rtmpsink (librtmp)", "rtmps", "publish"),
    Cell("GStreamer srtsink", "srt", "publish"),
    Cell("srt-live-transmit", "srt", "publish"),
    Cell("GStreamer webrtcbin", "whip", "publish"),
    Cell("Chromium @eyevinn/whip-web-client", "whip", "publish"),
]
READ = [
    Cell("ffmpeg", "rtmp", "read"),
    Cell("ffmpeg", "rtmps", "read"),
    Cell("ffmpeg", "srt", "read"),
    Cell("GStreamer rtmp2src", "rtmp", "read"),
    Cell("GStreamer rtmp2src", "rtmps", "read"),
    Cell("GStreamer rtmpsrc (librtmp)", "rtmp", "read"),
    Cell("GStreamer rtmpsrc (librtmp)", "rtmps", "read"),
    Cell("GStreamer srtsrc", "srt", "read"),
    Cell("rtmpdump (librtmp)", "rtmp", "read"),
    Cell("rtmpdump (librtmp)", "rtmps", "read"),
    Cell("srt-live-transmit", "srt", "read"),
    Cell("Chromium @eyevinn/webrtc-player", "whep", "read"),
    Cell("Chromium @eyevinn/webrtc-player", "whep", "read, joins 10 s after a Chromium WHIP publish"),
]

LATE_JOIN_DELAY_S = 10
LATE_JOIN_FIRST_FRAME_MS = 2000


def needs(cell: Cell) -> None:
    """Skip (or fail under TRAX_REQUIRE_ALL=1) when the cell's client or the protocol is missing here."""
    require_tool("ffmpeg", why="the matrix's reference publisher and reader")
    if cell.protocol == "srt":
        require(libsrt.available(), "libsrt 1.5 is not installed (Debian libsrt1.5-openssl)")
    if cell.client.startswith("GStreamer"):
        require_tool("gst-launch-1.0", why=f"{cell.client}")
    if cell.client == "srt-live-transmit":
        require_tool("srt-live-transmit", why="Debian srt-tools")


async def publish_and_verify(
    trax: Trax, source: Source, start: Callable[[], contextlib.AbstractAsyncContextManager[Any]], tmp: Path, name: str
) -> int:
    """Start a publisher, wait for /v1 to show it live, then ffmpeg must decode FRAMES frames over RTMP."""
    read = await trax.credentials(source, "read")
    async with start() as publisher:
        live = asyncio.ensure_future(trax.wait_live(source))
        ended = asyncio.ensure_future(_ended(publisher))
        done, _ = await asyncio.wait({live, ended}, return_when=asyncio.FIRST_COMPLETED)
        if live not in done:
            live.cancel()
            raise AssertionError(f"the publisher ended before going live: {await ended}")
        ended.cancel()
        live.result()
        return await ffmpeg_frames(require_tool("ffmpeg"), read["urls"]["rtmp"], tmp, f"{name}-verify")


async def _ended(publisher: Any) -> str:
    """Resolves when a publisher gives up (a process exits, or a browser page reports an error)."""
    if isinstance(publisher, Client):
        code = await publisher.proc.wait()
        why = publisher.tail() or "no error output"
        return f"{publisher.name} exited with {code}: {why}"
    while True:
        report = publisher()
        if report.get("phase") == "error" or report.get("timeout"):
            return f"the page reported {report}"
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _browser(bundle: Path, tmp: Path, query: dict[str, str]) -> Any:
    """A page publishing in the background; yields a function returning its latest report."""
    state: dict[str, Any] = {}

    async def go() -> None:
        state.update(await run_page(bundle, tmp, query, limit=60))

    task = asyncio.ensure_future(go())
    try:
        yield lambda: state
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("cell", PUBLISH, ids=str)
async def test_publish(
    cell: Cell, trax_server: Trax, tmp_path: Path, request: pytest.FixtureRequest, record_property: Any
) -> None:
    needs(cell)
    trax = trax_server
    source = await trax.new_source(cell.protocol, str(cell)[:60])
    creds = await trax.credentials(source, "publish")
    ffmpeg = require_tool("ffmpeg")
    start: Callable[[], contextlib.AbstractAsyncContextManager[Any]]
    if cell.client == "Chromium @eyevinn/whip-web-client":
        bundle: Path = request.getfixturevalue("web_bundle")
        query = {"mode": "publish", "whip": creds["urls"]["whip"], "seconds": "40"}
        start = lambda: _browser(bundle, tmp_path, query)  # noqa: E731
    else:
        cmd = _publisher_cmd(cell, creds, ffmpeg)
        start = lambda: running(cmd, "publisher", tmp_path)  # noqa: E731
    frames = await publish_and_verify(trax, source, start, tmp_path, "reader")
    record_property("result", f"{frames} frames read back over RTMP")


def _publisher_cmd(cell: Cell, creds: dict[str, Any], ffmpeg: str) -> list[str]:
    if cell.client == "ffmpeg":
        return clients.ffmpeg_publish(ffmpeg, cell.protocol, creds)
    if cell.client.startswith("ffmpeg (OBS"):
        return clients.ffmpeg_obs_publish(ffmpeg, cell.protocol, creds)
    gst = require_tool("gst-launch-1.0")
    if cell.client in ("GStreamer rtmp2sink", "GStreamer rtmpsink (librtmp)"):
        return clients.gst_rtmp_publish(gst, cell.client.split()[1], cell.protocol, creds)
    if cell.client == "GStreamer srtsink":
        return clients.gst_srt_publish(gst, creds)
    if cell.client == "srt-live-transmit":
        return clients.slt_publish(ffmpeg, require_tool("srt-live-transmit"), creds)
    if cell.client == "GStreamer webrtcbin":
        return clients.webrtcbin_publish(sys.executable, creds)
    raise AssertionError(f"no publisher for {cell}")


@pytest.mark.parametrize("cell", READ, ids=str)
async def test_read(
    cell: Cell, trax_server: Trax, tmp_path: Path, request: pytest.FixtureRequest, record_property: Any
) -> None:
    needs(cell)
    trax = trax_server
    ffmpeg = require_tool("ffmpeg")
    if cell.direction.startswith("read, joins"):
        record_property("result", await _late_joiner(trax, request.getfixturevalue("web_bundle"), tmp_path))
        return
    bundle: Path | None = request.getfixturevalue("web_bundle") if cell.client.startswith("Chromium") else None
    source = await trax.new_source("rtmp", str(cell)[:60])
    creds = await trax.credentials(source, "publish")
    read = await trax.credentials(source, "read")
    async with running(clients.ffmpeg_rtmp_reference(ffmpeg, creds), "publisher", tmp_path) as publisher:
        live = asyncio.ensure_future(trax.wait_live(source))
        ended = asyncio.ensure_future(_ended(publisher))
        done, _ = await asyncio.wait({live, ended}, return_when=asyncio.FIRST_COMPLETED)
        if live not in done:
            live.cancel()
            raise AssertionError(f"the reference publisher ended before going live: {await ended}")
        ended.cancel()
        live.result()
        reader = _reader(cell, read, ffmpeg, tmp_path, bundle)
        record_property("result", await reader())


def _reader(
    cell: Cell, read: dict[str, Any], ffmpeg: str, tmp: Path, bundle: Path | None
) -> Callable[[], Awaitable[str]]:
    async def ffmpeg_read() -> str:
        return f"{await ffmpeg_frames(ffmpeg, read['urls'][cell.protocol], tmp, 'reader')} frames decoded"

    async def gst_read() -> str:
        gst = require_tool("gst-launch-1.0")
        if cell.protocol == "srt":
            pipeline = clients.gst_srt_read(read)
        else:
            pipeline = clients.gst_rtmp_read(cell.client.split()[1], cell.protocol, read)
        return f"{await gst_frames(gst, pipeline, tmp, 'reader')} frames decoded"

    async def recorded(cmd: list[str], name: str, suffix: str) -> str:
        """A client that saves what it receives: let it run 4 s (~100 frames), then ffmpeg decodes the file."""
        received = tmp / f"received.{suffix}"
        async with running(cmd, name, tmp, stdout=received) as client:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.proc.wait(), 4)
            if client.proc.returncode not in (None, 0) and received.stat().st_size == 0:
                raise AssertionError(f"{name} exited with {client.proc.returncode}: {client.tail()}")
        frames = await ffmpeg_frames(ffmpeg, str(received), tmp, "decode-received")
        return f"{frames} frames decoded from {received.stat().st_size} bytes received"

    async def slt_read() -> str:
        return await recorded(clients.slt_read(require_tool("srt-live-transmit"), read), "srt-live-transmit", "ts")

    async def rtmpdump_read() -> str:
        return await recorded(clients.rtmpdump_read(require_tool("rtmpdump"), cell.protocol, read), "rtmpdump", "flv")

    async def browser_read() -> str:
        assert bundle is not None
        query = {"mode": "play", "whep": read["urls"]["whep"], "frames": str(FRAMES), "seconds": "20"}
        report = await run_page(bundle, tmp, query, limit=40)
        decoded = int(report.get("framesDecoded") or 0)
        assert decoded >= FRAMES, f"Chromium decoded {decoded} frames: {report}"
        return f"{decoded} frames decoded (getStats)"

    if cell.client == "ffmpeg":
        return ffmpeg_read
    if cell.client.startswith("GStreamer"):
        return gst_read
    if cell.client == "srt-live-transmit":
        return slt_read
    if cell.client == "rtmpdump (librtmp)":
        return rtmpdump_read
    return browser_read


async def _late_joiner(trax: Trax, bundle: Path, tmp: Path) -> str:
    """Chromium publishes over WHIP; a WHEP viewer joining 10 s later must decode within 2 s."""
    source = await trax.new_source("whip", "late-joiner")
    pub = await trax.credentials(source, "publish")
    read = await trax.credentials(source, "read")
    query = {
        "mode": "late", "whip": pub["urls"]["whip"], "whep": read["urls"]["whep"],
        "delay": str(LATE_JOIN_DELAY_S), "frames": str(FRAMES), "seconds": "15",
    }  # fmt: skip
    report = await run_page(bundle, tmp, query, limit=LATE_JOIN_DELAY_S + 40)
    decoded = int(report.get("framesDecoded") or 0)
    first = report.get("firstFrameMs")
    assert report.get("publishing") and int(report.get("framesEncoded") or 0) > 0, f"the publish failed: {report}"
    assert decoded >= FRAMES, f"the late viewer decoded {decoded} frames in 15 s: {report}"
    assert first is not None and first <= LATE_JOIN_FIRST_FRAME_MS, f"first frame after {first} ms: {report}"
    at_join, after = report.get("publisherAtJoin") or {}, report.get("publisherAfterPlay") or {}
    return (
        f"{decoded} frames, first after {first:.0f} ms; publisher keyframes {at_join.get('keyFramesEncoded')}"
        f"->{after.get('keyFramesEncoded')}, PLIs received {at_join.get('pliCount')}->{after.get('pliCount')}"
    )
