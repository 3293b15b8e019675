"""Going live broadcasts, end to end: ffmpeg encoders → a real ``trax serve`` → real receivers.

Receivers are nginx-rtmp, ``ffmpeg -listen``, ``srt-live-transmit`` and a TLS front of ffmpeg
(``tests/broadcast/receivers.py``); what they recorded is read back with ffprobe and PyAV.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from tests.broadcast.feeds import colour_name, mean_rgb
from tests.broadcast.receivers import ffmpeg_rtmp_listener, nginx_rtmp, probe_video, srt_listener
from tests.broadcast.serve_support import SCOPES, encoder_cmd, ffprobe_packets
from tests.support.server import ServerProcess, dev_config
from tests.support.tools import require_tool
from trax.broadcast.layouts import slots
from trax.domain.program import Layout
from trax.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

NGINX_KEY = "nginx-key-SECRET-0001"
LISTENER_KEY = "listener-key-SECRET-0002"
SRT_PASSPHRASE = "srt-passphrase-SECRET-0003"
FPS = 30


@dataclass
class Live:
    """A running ``trax serve`` (RTMP ingest on) and an authenticated async client."""

    server: ServerProcess
    http: httpx.AsyncClient
    tmp: Path

    async def studio(self) -> str:
        r = await self.http.post("/v1/studios", json={"name": "Show"})
        return str(r.json()["id"])

    async def source(self, studio: str, kind: str = "rtmp", **extra: Any) -> dict[str, Any]:
        r = await self.http.post(f"/v1/studios/{studio}/sources", json={"name": "cam", "kind": kind, **extra})
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def destination(self, studio: str, **body: Any) -> dict[str, Any]:
        r = await self.http.post(f"/v1/studios/{studio}/destinations", json={"name": "out", **body})
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def status(self, studio: str) -> dict[str, Any]:
        return dict((await self.http.get(f"/v1/studios/{studio}/stream-status")).json())

    async def until(self, what: str, check: Any, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await check():
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}\n{self.server.log()[-3000:]}")

    async def destination_status(self, studio: str, dst: str) -> dict[str, Any]:
        return next(d for d in (await self.status(studio))["destinations"] if d["id"] == dst)

    async def until_destinations(self, studio: str, status: str, ids: list[str], within: float = 30.0) -> None:
        async def ok() -> bool:
            found = {d["id"]: d["status"] for d in (await self.status(studio))["destinations"]}
            return all(found.get(i) == status for i in ids)

        await self.until(f"destinations {ids} {status}", ok, within)

    async def until_source_live(self, studio: str, source: str) -> None:
        async def ok() -> bool:
            return any(s["id"] == source and s["status"] == "live" for s in (await self.status(studio))["sources"])

        await self.until(f"source {source} live", ok)

    async def publish_url(self, source: dict[str, Any]) -> str:
        path = source["ingest"]["path"]
        minted = await asyncio.to_thread(self.server.cli_json, "tokens", "mint", "--path", path, "--action", "publish")
        return str(minted["urls"]["rtmp"])


@contextlib.asynccontextmanager
async def serve(tmp: Path, **broadcast: Any) -> AsyncIterator[Live]:
    settings = {"reconnect_min_seconds": 0.5, "reconnect_max_seconds": 2.0, "tls_verify": False, **broadcast}
    config = dev_config(
        tmp,
        ingest={"host": "127.0.0.1", "rtmp": {"enabled": True, "port": free_port()}},
        broadcast={"recordings_dir": str(tmp / "recordings"), "media_cache_dir": str(tmp / "cache"), **settings},
    )
    server = ServerProcess(config, tmp)
    await asyncio.to_thread(server.start, 120)
    try:
        await asyncio.to_thread(server.cli_json, "accounts", "create", "acme")
        scopes = [a for s in SCOPES for a in ("--scope", s)]
        key = await asyncio.to_thread(server.cli_json, "keys", "create", "--account", "acme", "--name", "t", *scopes)
        headers = {"Authorization": f"Bearer {key['secret']}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as http:
            yield Live(server, http, tmp)
    finally:
        await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def encoder(cmd: list[str]) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def split_key(url: str) -> tuple[str, str]:
    base, key = url.rsplit("/", 1)
    return base, key


def assert_increasing(ffprobe: str, file: Path) -> list[float]:
    dts = ffprobe_packets(ffprobe, file)
    assert len(dts) > FPS, f"{file}: only {len(dts)} video packets"
    assert all(b > a for a, b in itertools.pairwise(dts)), f"{file}: video dts not strictly increasing"
    return dts


def colours_over_time(file: Path, rect: tuple[int, int, int, int] | None = None, every: int = 15) -> list[str]:
    """The colour of ``rect`` (the whole picture by default) in every ``every``-th decoded frame."""
    out: list[str] = []
    with av.open(str(file)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every:
                continue
            x, y, w, h = rect or (0, 0, frame.width, frame.height)
            out.append(colour_name(mean_rgb(frame, x, y, w, h)))
    return out


def runs(items: list[str]) -> list[str]:
    return [k for k, _ in itertools.groupby(items)]


def assert_no_secrets(live: Live, *secrets: str) -> None:
    log = live.server.log()
    for secret in secrets:
        assert secret not in log, f"a secret reached the server log: {secret[:6]}…"


async def test_go_live_pushes_one_source_to_two_receivers(tmp_path: Path) -> None:
    ffmpeg, ffprobe = require_tool("ffmpeg"), require_tool("ffprobe")
    async with (
        serve(tmp_path) as live,
        nginx_rtmp(tmp_path) as nginx,
        ffmpeg_rtmp_listener(tmp_path, key=LISTENER_KEY) as listener,
    ):
        studio = await live.studio()
        cam = await live.source(studio)
        base, key = split_key(listener.url)
        a = await live.destination(studio, platform="custom_rtmp", rtmpUrl=nginx.url, streamKey=NGINX_KEY)
        b = await live.destination(studio, platform="custom_rtmp", rtmpUrl=base, streamKey=key)
        assert a["streamKeyHint"] == NGINX_KEY[-4:] and NGINX_KEY not in str(a)
        async with encoder(encoder_cmd(ffmpeg, await live.publish_url(cam), 60)):
            await live.until_source_live(studio, cam["id"])
            r = await live.http.post(f"/v1/studios/{studio}/go-live")
            assert r.status_code == 202 and r.json()["status"] == "live", r.text
            await live.until_destinations(studio, "live", [a["id"], b["id"]])
            window_start = time.monotonic()
            # a monitor reads the program like any path, with a read token from the CLI
            minted = await asyncio.to_thread(
                live.server.cli_json, "tokens", "mint", "--path", f"studios/{studio}/program", "--action", "read"
            )
            monitor = tmp_path / "monitor.flv"
            watch = [
                ffmpeg,
                "-v",
                "error",
                "-nostdin",
                "-i",
                minted["urls"]["rtmp"],
                "-t",
                "3",
                "-c",
                "copy",
                str(monitor),
            ]
            async with encoder(watch) as reader:
                async with asyncio.timeout(30):
                    await reader.wait()
            await asyncio.sleep(5)
            assert (await live.status(studio))["program"]["status"] == "running"
            r = await live.http.post(f"/v1/studios/{studio}/go-offline")
            window = time.monotonic() - window_start
            assert r.json()["status"] == "offline"
            assert {d["status"] for d in r.json()["destinations"]} == {"idle"}
        await listener.wait(10)
    expected = int(window * FPS)
    for file in (nginx.recorded(NGINX_KEY), listener.output):
        assert file is not None and file.exists(), file
        frames = len(assert_increasing(ffprobe, file))
        assert frames >= 0.95 * expected, f"{file.name}: {frames} frames, {expected} published while live"
    assert len(assert_increasing(ffprobe, monitor)) >= 2 * FPS
    assert_no_secrets(live, NGINX_KEY, LISTENER_KEY, minted["token"])


async def test_refused_destination_errors_retries_and_recovers_alone(tmp_path: Path) -> None:
    ffmpeg, ffprobe = require_tool("ffmpeg"), require_tool("ffprobe")
    dead_port = free_port()
    async with serve(tmp_path) as live, ffmpeg_rtmp_listener(tmp_path / "ok", key=LISTENER_KEY) as healthy:
        studio = await live.studio()
        cam = await live.source(studio)
        base, key = split_key(healthy.url)
        good = await live.destination(studio, platform="custom_rtmp", rtmpUrl=base, streamKey=key)
        bad = await live.destination(
            studio, platform="custom_rtmp", rtmpUrl=f"rtmp://127.0.0.1:{dead_port}/live", streamKey="late-key"
        )
        async with encoder(encoder_cmd(ffmpeg, await live.publish_url(cam), 60)):
            await live.until_source_live(studio, cam["id"])
            await live.http.post(f"/v1/studios/{studio}/go-live")
            await live.until_destinations(studio, "live", [good["id"]])
            window_start = time.monotonic()

            async def refused() -> bool:
                d = await live.destination_status(studio, bad["id"])
                return d["status"] == "error" and d["error"]["code"] == "connection_refused"

            await live.until("connection_refused", refused)
            await asyncio.sleep(3)  # it keeps retrying meanwhile
            async with ffmpeg_rtmp_listener(tmp_path / "late", key="late-key", port=dead_port) as late:
                await live.until_destinations(studio, "live", [bad["id"]])
                await asyncio.sleep(4)
                await live.http.post(f"/v1/studios/{studio}/go-offline")
                window = time.monotonic() - window_start
                await late.wait(10)
            await healthy.wait(10)
    assert late.output is not None and len(assert_increasing(ffprobe, late.output)) >= 3 * FPS
    assert healthy.output is not None
    frames = len(assert_increasing(ffprobe, healthy.output))
    assert frames >= 0.95 * window * FPS, (frames, window)


async def test_srt_and_rtmps_destinations_receive_the_program(tmp_path: Path) -> None:
    ffmpeg, ffprobe = require_tool("ffmpeg"), require_tool("ffprobe")
    async with (
        serve(tmp_path) as live,
        srt_listener(tmp_path, passphrase=SRT_PASSPHRASE) as srt,
        ffmpeg_rtmp_listener(tmp_path, tls=True, key=LISTENER_KEY) as rtmps,
    ):
        studio = await live.studio()
        cam = await live.source(studio)
        s = await live.destination(studio, platform="custom_srt", srtUrl=srt.url, passphrase=SRT_PASSPHRASE)
        base, key = split_key(rtmps.url)
        assert base.startswith("rtmps://")
        t = await live.destination(studio, platform="custom_rtmp", rtmpUrl=base, streamKey=key)
        async with encoder(encoder_cmd(ffmpeg, await live.publish_url(cam), 60)):
            await live.until_source_live(studio, cam["id"])
            await live.http.post(f"/v1/studios/{studio}/go-live")
            await live.until_destinations(studio, "live", [s["id"], t["id"]])
            await asyncio.sleep(5)
            await live.http.post(f"/v1/studios/{studio}/go-offline")
        await rtmps.wait(10)
    assert srt.output is not None and rtmps.output is not None
    for file in (srt.output, rtmps.output):
        frames, _ = probe_video(file)
        assert frames >= 3 * FPS, (file, frames)
    assert_increasing(ffprobe, rtmps.output)
    assert_no_secrets(live, SRT_PASSPHRASE, LISTENER_KEY)


async def test_switching_the_on_air_source_keeps_one_connection(tmp_path: Path) -> None:
    ffmpeg, ffprobe = require_tool("ffmpeg"), require_tool("ffprobe")
    # ffmpeg -listen takes exactly one publish: had the egress reconnected, the second part would be missing
    async with serve(tmp_path) as live, ffmpeg_rtmp_listener(tmp_path, key=LISTENER_KEY) as listener:
        studio = await live.studio()
        red, blue = await live.source(studio), await live.source(studio)
        base, key = split_key(listener.url)
        await live.destination(studio, platform="custom_rtmp", rtmpUrl=base, streamKey=key)
        await live.http.patch(f"/v1/studios/{studio}", json={"program": {"sources": [red["id"]], "record": True}})
        async with (
            encoder(encoder_cmd(ffmpeg, await live.publish_url(red), 60, colour="red")),
            encoder(encoder_cmd(ffmpeg, await live.publish_url(blue), 60, colour="blue")),
        ):
            await live.until_source_live(studio, red["id"])
            await live.until_source_live(studio, blue["id"])
            await live.http.post(f"/v1/studios/{studio}/go-live")
            await asyncio.sleep(4)
            r = await live.http.patch(f"/v1/studios/{studio}", json={"program": {"sources": [blue["id"], red["id"]]}})
            assert r.status_code == 200
            await asyncio.sleep(4)
            await live.http.patch(f"/v1/studios/{studio}", json={"program": {"sources": [red["id"]]}})
            await asyncio.sleep(4)
            await live.http.post(f"/v1/studios/{studio}/go-offline")
        await listener.wait(10)
        media = (await live.http.get("/v1/media")).json()["data"]
    assert listener.output is not None
    assert_increasing(ffprobe, listener.output)
    seen = [c for c in runs(colours_over_time(listener.output)) if c != "black"]
    assert seen == ["red", "blue", "red"], seen
    (recording,) = [a for a in media if a.get("studioId") == studio]
    assert recording["status"] == "ready"
    stored = next((tmp_path / "blobs").rglob(recording["id"]))
    assert [c for c in runs(colours_over_time(stored)) if c != "black"] == ["red", "blue", "red"]


async def test_grid_of_two_cameras_and_a_media_source_survives_a_camera_leaving(tmp_path: Path) -> None:
    ffmpeg, ffprobe = require_tool("ffmpeg"), require_tool("ffprobe")
    clip = tmp_path / "blue.mp4"
    made = await asyncio.to_thread(
        subprocess.run,
        [ffmpeg, "-v", "error", "-f", "lavfi", "-i", "color=c=blue:size=320x180:rate=30", "-t", "2",
         "-c:v", "libx264", "-g", "30", "-pix_fmt", "yuv420p", str(clip)],
        check=False, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0
    async with serve(tmp_path) as live, ffmpeg_rtmp_listener(tmp_path, key=LISTENER_KEY) as listener:
        up = await live.http.post(
            "/v1/media/uploads", json={"name": "blue.mp4", "contentType": "video/mp4", "sizeBytes": clip.stat().st_size}
        )
        assert up.status_code == 201, up.text
        put = await live.http.put(up.json()["url"], content=clip.read_bytes(), headers={"Content-Type": "video/mp4"})
        assert put.status_code in (200, 201), put.text
        studio = await live.studio()
        red, green = await live.source(studio), await live.source(studio)
        media = await live.source(studio, kind="media", mediaAssetId=up.json()["assetId"])
        await live.http.patch(f"/v1/studios/{media['studioId']}/sources/{media['id']}", json={"loop": True})
        base, key = split_key(listener.url)
        dst = await live.destination(studio, platform="custom_rtmp", rtmpUrl=base, streamKey=key)
        program = {"layout": "grid", "sources": [red["id"], green["id"], media["id"]], "passthrough": False}
        program["output"] = {"width": 640, "height": 360, "fps": 30, "videoBitrate": 1_000_000}
        assert (await live.http.patch(f"/v1/studios/{studio}", json={"program": program})).status_code == 200
        # "lime" is (0, 255, 0); FFmpeg's "green" is a dark (0, 128, 0), too near black to tell apart
        async with encoder(encoder_cmd(ffmpeg, await live.publish_url(red), 60, colour="red")):
            async with encoder(encoder_cmd(ffmpeg, await live.publish_url(green), 60, colour="lime")):
                await live.until_source_live(studio, red["id"])
                await live.until_source_live(studio, green["id"])
                await live.http.post(f"/v1/studios/{studio}/go-live")
                await live.until_destinations(studio, "live", [dst["id"]])
                await asyncio.sleep(5)
            await asyncio.sleep(5)  # green has left: its slot shows the slate
            status = await live.destination_status(studio, dst["id"])
            assert status["status"] == "live"
            await live.http.post(f"/v1/studios/{studio}/go-offline")
        await listener.wait(10)
    assert listener.output is not None
    assert_increasing(ffprobe, listener.output)
    rects = slots(Layout.GRID, 3, 640, 360)
    by_slot = []
    for r in rects:
        centre = (r.x + r.w // 2 - 8, r.y + r.h // 2 - 8, 16, 16)
        by_slot.append(runs(colours_over_time(listener.output, centre)))
    assert "red" in by_slot[0] and "blue" in by_slot[2], by_slot
    # green, then the slate (black) once its camera left — in the one connection the receiver accepted
    green_slot = [c for c in by_slot[1] if c in ("green", "black")]
    assert "green" in green_slot and green_slot[-1] == "black", by_slot[1]
