"""The per-source static stream key: POST .../stream-key through /v1 and the SDK, used by ffmpeg over RTMP and
SRT (frames decode), rotated: the old key is refused at once and its session ends, the new one works."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import trax
from tests.api.serve_ingest import FPS, obs_publish, publish, read_frames, served, stop
from tests.ingest.srt_support import require_srt

pytestmark = [pytest.mark.slow]


def test_stream_key_over_v1_rtmp_then_rotated_while_live(tmp_path: Path) -> None:
    ffmpeg = require_srt()
    with served(tmp_path) as s:
        source = s.new_source("rtmp")
        url = f"/v1/studios/{s.studio_id}/sources/{source['id']}/stream-key"
        r = s.http.post(url)
        assert r.status_code == 200, r.text
        first = r.json()
        key = first["streamKey"]
        assert first["sourceId"] == source["id"] and first["path"] == source["ingest"]["path"]
        assert first["obs"]["rtmp"]["streamKey"].startswith(source["ingest"]["path"].split("/", 1)[1] + "?")
        assert key in first["obs"]["rtmp"]["streamKey"] and key in first["urls"]["srt"]
        assert key not in s.http.get(f"/v1/studios/{s.studio_id}/sources/{source['id']}").text  # shown once

        pair = first["obs"]["rtmp"]
        encoder = obs_publish(ffmpeg, pair["server"], pair["streamKey"], seconds=30)
        try:
            assert s.wait_status(source["id"], "live")["status"] == "live", s.server.log()
            played = read_frames(ffmpeg, s.read_token(source["id"])["urls"]["rtmp"], tmp_path / "rtmp.flv")
            assert played.get("video", 0) >= 2 * FPS, played

            rotated_at = time.monotonic()
            r = s.http.post(url)
            assert r.status_code == 200, r.text
            second = r.json()
            assert second["streamKey"] != key
            rc, err = stop(encoder, timeout=15)  # the session that used the old key is ended
            assert time.monotonic() - rotated_at < 10, "the old key's session outlived the rotation"
        finally:
            stop(encoder, timeout=1)
        assert s.wait_status(source["id"], "idle")["status"] == "idle"

        refused = obs_publish(ffmpeg, pair["server"], pair["streamKey"], seconds=5)
        rc, err = stop(refused)
        assert rc != 0, "the rotated-out key was accepted"
        assert s.source_status(source["id"])["status"] != "live"

        srt_encoder = publish(ffmpeg, second["urls"]["srt"], seconds=8, fmt="mpegts")
        try:
            assert s.wait_status(source["id"], "live")["status"] == "live", s.server.log()
            played = read_frames(ffmpeg, s.read_token(source["id"])["urls"]["rtmp"], tmp_path / "srt.flv")
        finally:
            rc, err = stop(srt_encoder)
        assert rc == 0, err
        assert played.get("video", 0) >= 2 * FPS, played
        log = s.server.log()
        assert key not in log and second["streamKey"] not in log


def test_stream_key_through_the_sdk_srt_then_rotated(tmp_path: Path) -> None:
    ffmpeg = require_srt()
    with served(tmp_path) as s, trax.Client(s.server.base_url, s.secret) as client:
        studio = client.studios.get(s.studio_id).result()
        cam = studio.sources.create(name="cam", kind="srt").result()
        first = cam.stream_key().result()
        assert first.stream_key.startswith("live_") and first.stream_key not in repr(first)

        encoder = publish(ffmpeg, first.urls["srt"], seconds=8, fmt="mpegts")
        try:
            assert s.wait_status(cam.id, "live")["status"] == "live", s.server.log()
            played = read_frames(ffmpeg, s.read_token(cam.id)["urls"]["rtmp"], tmp_path / "sdk-srt.flv")
        finally:
            rc, err = stop(encoder)
        assert rc == 0, err
        assert played.get("video", 0) >= 2 * FPS, played
        assert s.wait_status(cam.id, "idle")["status"] == "idle"

        second = cam.stream_key().result()
        assert second.stream_key != first.stream_key
        old = publish(ffmpeg, first.urls["srt"], seconds=3, fmt="mpegts")
        rc, err = stop(old)
        assert rc != 0, "SRT accepted the rotated-out key"

        pair = second.obs["rtmp"]
        encoder = obs_publish(ffmpeg, pair["server"], pair["streamKey"], seconds=8)
        try:
            assert s.wait_status(cam.id, "live")["status"] == "live", s.server.log()
            played = read_frames(ffmpeg, s.read_token(cam.id)["urls"]["rtmp"], tmp_path / "sdk-rtmp.flv")
        finally:
            rc, err = stop(encoder)
        assert rc == 0, err
        assert played.get("video", 0) >= 2 * FPS, played
