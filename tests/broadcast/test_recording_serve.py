"""Recording through a real ``trax serve``: the asset turns ready with the live duration; a kill -9 loses little."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from tests.broadcast.serve_support import deployment, encoder_cmd, encoding, ffprobe_duration, ffprobe_packets
from tests.support.tools import require_tool

pytestmark = pytest.mark.slow


def recordings(dep_http: object, studio_id: str) -> list[dict[str, object]]:
    data = dep_http.get("/v1/media").json()["data"]  # type: ignore[attr-defined]
    return [a for a in data if a.get("studioId") == studio_id]


def test_recording_is_an_asset_with_the_live_duration_and_survives_kill_9(tmp_path: Path) -> None:
    ffmpeg, ffprobe = require_tool("ffmpeg"), require_tool("ffprobe")
    with deployment(tmp_path) as dep:
        studio = dep.studio()
        cam = dep.source(studio)
        with encoding(encoder_cmd(ffmpeg, dep.publish_url(cam), 120)):
            dep.wait_source_live(studio, cam["id"])
            r = dep.http.patch(f"/v1/studios/{studio}", json={"program": {"record": True}})
            assert r.json()["program"]["record"] is True
            assert dep.http.post(f"/v1/studios/{studio}/go-live").status_code == 202
            started = time.monotonic()
            (asset,) = recordings(dep.http, studio)
            assert asset["status"] == "processing"
            time.sleep(8)
            assert dep.http.post(f"/v1/studios/{studio}/go-offline").json()["status"] == "offline"
            live_seconds = time.monotonic() - started
            (asset,) = recordings(dep.http, studio)
            assert asset["status"] == "ready", asset
            assert abs(float(asset["durationSeconds"]) - live_seconds) <= 2.0, (asset, live_seconds)
            stored = next((tmp_path / "blobs").rglob(str(asset["id"])))
            assert stored.stat().st_size == asset["sizeBytes"]
            assert abs(ffprobe_duration(ffprobe, stored) - live_seconds) <= 2.0
            dts = ffprobe_packets(ffprobe, stored)
            assert dts and all(b > a for a, b in itertools.pairwise(dts))

            # live again, still recording; the server dies mid-recording
            assert dep.http.post(f"/v1/studios/{studio}/go-live").status_code == 202
            time.sleep(7)
            dep.server.kill9()
        spool = list((tmp_path / "recordings").rglob("*.mp4"))
        assert len(spool) == 1, spool
        assert ffprobe_duration(ffprobe, spool[0]) >= 3.0  # the fragments written so far play
        # the next start stores what the dead process left, as a ready asset
        dep.server.start(timeout=120)
        second = [a for a in recordings(dep.http, studio) if a["id"] != asset["id"]]
        assert len(second) == 1 and second[0]["status"] == "ready", second
        assert float(second[0]["durationSeconds"]) >= 3.0
        assert not list((tmp_path / "recordings").rglob("*.mp4"))
