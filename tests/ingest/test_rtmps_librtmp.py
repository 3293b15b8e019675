"""RTMPS with librtmp clients (rtmpdump, GStreamer rtmpsink): their TLS handshake breaks on TLS 1.3 session tickets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.ingest.rtmp.support import count_hub_packets, decode_h264, new_source, port, publish_cmd, rtmp_runtime, run
from tests.ingest.test_rtmp_gstreamer import FRAMES, gst_cmd
from tests.support.tools import require_tool

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def test_the_rtmps_context_sends_no_session_tickets(tmp_path: Path) -> None:
    from tests.ingest.rtmp.support import self_signed
    from trax.ingest.rtmp.listener import tls_context

    certfile, keyfile = self_signed(tmp_path)
    assert tls_context(str(certfile), str(keyfile)).num_tickets == 0


async def test_gstreamer_rtmpsink_publishes_over_rtmps(tmp_path: Path) -> None:
    gst = require_tool("gst-launch-1.0")
    async with rtmp_runtime(tmp_path, tls=True) as rt:
        src, _ = await new_source(rt)
        token = (await rt.media_tokens.mint(path=src.path, action="publish")).token
        url = f"rtmps://127.0.0.1:{port(rt, 'rtmps')}/{src.path}?user=trax&pass={token}"
        counting = asyncio.create_task(count_hub_packets(rt, src.path, until_s=40))
        rc, err = await run(gst_cmd(gst, ["rtmpsink", f"location={url} live=1"]), 40)
        assert rc == 0, err
        got = await asyncio.wait_for(counting, 10)
        assert decode_h264(got["video_data"]) >= 0.9 * FRAMES
        assert got["audio"] > 0


async def test_rtmpdump_plays_over_rtmps(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    rtmpdump = require_tool("rtmpdump")
    ffmpeg = require_tool("ffmpeg")
    out = tmp_path / "played.flv"
    async with rtmp_runtime(tmp_path, tls=True) as rt:
        src, _ = await new_source(rt)
        read = (await rt.media_tokens.mint(path=src.path, action="read")).token
        publish = (await rt.media_tokens.mint(path=src.path, action="publish")).token
        app, name = src.path.split("/", 1)
        play = [rtmpdump, "-q", "--live", "-r", f"rtmps://127.0.0.1:{port(rt, 'rtmps')}/{app}"]
        play += ["-a", app, "-y", f"{name}?user=trax&pass={read}", "-o", str(out)]
        publisher = asyncio.create_task(
            run(publish_cmd(ffmpeg, f"rtmp://127.0.0.1:{port(rt)}/{src.path}?token={publish}", 5), 40)
        )
        await asyncio.sleep(1.5)  # the player joins a live path
        rc, err = await run(play, 30)
        rc_pub, err_pub = await publisher
        assert rc_pub == 0, err_pub
        assert rc in (0, 2), err  # 2: librtmp's "incomplete" when the live stream ends
        with av.open(str(out)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames >= 2 * 25, frames  # at least 2 of the 3.5 s it was attached
