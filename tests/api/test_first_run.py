"""The first run as the README gives it: configs/dev.yaml takes an encoder with no edit (OBS-style server + key)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from tests.api.serve_ingest import FPS, obs_publish, read_frames, served, stop
from tests.support.tools import require_tool
from trax.ports import free_port

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def dev_yaml_on_free_ports() -> dict[str, object]:
    """configs/dev.yaml as shipped, with only its fixed ports moved (tests run side by side)."""
    config = yaml.safe_load((ROOT / "configs" / "dev.yaml").read_text())
    ingest = config["ingest"]
    for name in ("rtmp", "srt", "whip"):
        assert ingest[name]["enabled"] is True, f"dev.yaml does not turn {name} on"
    assert ingest["host"] == "127.0.0.1"
    config["server"]["port"] = free_port()
    ingest["rtmp"]["port"] = free_port()
    ingest["srt"]["port"] = free_port(socket.SOCK_DGRAM)
    ingest["whip"]["port"] = free_port()
    return dict(config)


def test_dev_yaml_serves_rtmp_srt_and_whip_on_loopback() -> None:
    config = yaml.safe_load((ROOT / "configs" / "dev.yaml").read_text())
    ports = {name: config["ingest"][name]["port"] for name in ("rtmp", "srt", "whip")}
    assert ports == {"rtmp": 1935, "srt": 8890, "whip": 8889}  # the ports docs/ingest.md and the README name
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/serve" in readme and "1935" in readme and "8890" in readme and "8889" in readme


def test_first_run_takes_an_obs_style_push_and_plays_it(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    with served(tmp_path, dev_yaml_on_free_ports()) as s:
        source = s.new_source("rtmp")
        r = s.http.post(f"/v1/studios/{s.studio_id}/sources/{source['id']}/session-tokens")
        assert r.status_code == 201, r.text
        creds = r.json()
        assert set(creds["urls"]) >= {"rtmp", "srt", "whip"}  # every transport is on with no config edit
        pair = creds["obs"]["rtmp"]
        assert pair["server"].startswith("rtmp://127.0.0.1:") and pair["server"].endswith("/inputs")
        assert creds["token"] in pair["streamKey"] and creds["token"] not in pair["server"]
        assert f"{pair['server']}/{pair['streamKey']}" == creds["urls"]["rtmp"]

        encoder = obs_publish(ffmpeg, pair["server"], pair["streamKey"], seconds=10)
        try:
            state = s.wait_status(source["id"], "live")
            assert state["status"] == "live", s.server.log()
            played = read_frames(ffmpeg, s.read_token(source["id"])["urls"]["rtmp"], tmp_path / "played.flv")
        finally:
            rc, err = stop(encoder)
        assert rc == 0, err + s.server.log()
        assert played.get("video", 0) >= 2 * FPS, played  # 3 s of play: frames decode, not just a connection
        assert played.get("audio", 0) > 0, played
        assert creds["token"] not in s.server.log()
