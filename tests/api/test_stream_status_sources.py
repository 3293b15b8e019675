"""Stream-status sources carry name, kind, the error reason and the live publisher's media facts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.api.serve_ingest import FPS, obs_publish, served, stop
from tests.conftest import memory_settings
from tests.support.tools import require_tool
from trax.domain.sources import SourceStatus
from trax.runtime import Runtime
from trax.server.wire import stream_status_out
from trax.services import Principal


@pytest.mark.slow
def test_live_source_reports_what_ffmpeg_sends(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    with served(tmp_path) as s:
        source = s.new_source("rtmp")
        creds = s.http.post(f"/v1/studios/{s.studio_id}/sources/{source['id']}/session-tokens").json()
        pair = creds["obs"]["rtmp"]
        encoder = obs_publish(ffmpeg, pair["server"], pair["streamKey"], seconds=12)
        try:
            state: dict[str, Any] = s.wait_status(source["id"], "live")
            deadline = time.monotonic() + 10
            # the rate and fps need a moment of media; poll until the publisher has shown them
            while not ({"fps", "bitrate"} <= set(state.get("media") or {})) and time.monotonic() < deadline:
                time.sleep(0.3)
                state = s.source_status(source["id"])
        finally:
            stop(encoder)
        assert state["status"] == "live" and state["name"] == "cam-rtmp" and state["kind"] == "rtmp", state
        media = state["media"]
        assert media["videoCodec"] == "h264" and (media["width"], media["height"]) == (320, 240), media
        assert abs(media["fps"] - FPS) < 2, media
        assert 10_000 < media["bitrate"] < 5_000_000, media
        assert media["audioCodec"] == "aac" and media["sampleRate"] == 48000 and media["channels"] == 1, media
        assert "reason" not in state
        assert "media" not in s.wait_status(source["id"], "idle")  # facts only while someone publishes


@pytest.mark.anyio
async def test_an_errored_source_says_why(tmp_path: Path) -> None:
    async with Runtime(memory_settings(tmp_path)) as rt:  # type: ignore[arg-type]
        op = Principal.operator((await rt.services.accounts.create("acme")).id)
        studio = await rt.services.studios.create(op, name="s")
        src = await rt.services.sources.create(op, studio.id, name="cam", kind="srt")
        await rt.services.sources.set_status(src.path, SourceStatus.ERROR, "no keyframe in 10 s")
        out = stream_status_out(await rt.services.studios.stream_status(op, studio.id))
        [state] = out.sources
        assert (state.id, state.name, state.kind, state.status) == (src.id, "cam", "srt", "error")
        assert state.reason == "no keyframe in 10 s" and state.media is None
