"""A stream whose keyframes never arrive (GStreamer mpegtsmux default alignment into srtsink) says why."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.ingest.srt_support import collect, decoded_frames, require_srt, run, srt_env
from tests.support.tools import require_tool
from trax.domain.sources import SourceStatus
from trax.ingest.hub import NO_KEYFRAMES_REASON

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def gst_srt_cmd(gst: str, uri: str, *, seconds: int, aligned: bool) -> list[str]:
    video = ["videotestsrc", f"num-buffers={seconds * 25}", "is-live=true", "pattern=ball"]
    video += ["!", "video/x-raw,width=640,height=360,framerate=25/1"]
    video += ["!", "x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=25", "bitrate=2000"]
    video += ["!", "h264parse", "!", "mpegtsmux", *(["alignment=7"] if aligned else [])]
    return [gst, "-q", "-e", *video, "!", "srtsink", f"uri={uri}", "wait-for-connection=false"]


@pytest.mark.parametrize("aligned", [False, True])
async def test_keyframes_that_never_arrive_get_a_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, aligned: bool
) -> None:
    require_srt()
    gst = require_tool("gst-launch-1.0")
    caplog.set_level(logging.INFO, logger="trax.ingest.hub")
    async with srt_env(tmp_path, other_transports={"keyframe_warning_seconds": 2}) as env:
        rt = env.runtime
        token = await env.token("publish")
        uri = f"srt://127.0.0.1:{env.port}?streamid=publish:{env.path}:trax:{token}"
        reading = asyncio.create_task(collect(env))
        sender = asyncio.create_task(run(gst_srt_cmd(gst, uri, seconds=5, aligned=aligned), limit=30))
        reasons: list[str | None] = []
        packets = 0
        while not sender.done():
            src = await rt.services.sources.by_path(env.path)
            assert src is not None
            pub = rt.hub.publisher(env.path)
            packets = max(packets, pub.packets if pub else 0)
            if src.status is SourceStatus.LIVE:
                reasons.append(src.status_reason)
            await asyncio.sleep(0.1)
        rc, err = await sender
        assert rc == 0, err
        assert packets > 50  # media did flow
        tracks, got = await asyncio.wait_for(reading, 20)
        frames = decoded_frames(tracks, got).get("video", 0)
        warnings = [r for r in caplog.records if "no video keyframe" in r.getMessage()]
        if aligned:  # 7 TS packets per buffer fit a 1316-byte SRT message: keyframes arrive, no reason
            assert reasons and set(reasons) == {None}
            assert warnings == []
            assert frames >= 0.8 * 5 * 25
        else:  # every buffer over 1316 bytes (every keyframe) was dropped by srtsink: live, but why it cannot play
            assert NO_KEYFRAMES_REASON in reasons
            assert len(warnings) == 1 and env.path in warnings[0].getMessage()
            assert frames == 0  # what the reason explains: a reader never gets a picture
