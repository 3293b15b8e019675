"""``trax serve`` starts the rtmp transport from the deployment file; the minted URL works as printed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.ingest.rtmp.support import publish_cmd, run
from tests.support.server import ServerProcess, dev_config
from tests.support.tools import require_tool
from trax.ports import free_port

pytestmark = [pytest.mark.slow]


def test_serve_runs_rtmp_and_env_overrides_the_port(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    configured, real = free_port(), free_port()
    config = dev_config(tmp_path, ingest={"host": "127.0.0.1", "rtmp": {"enabled": True, "port": configured}})
    server = ServerProcess(config, tmp_path, env={"TRAX_INGEST__RTMP__PORT": str(real)})
    server.start(timeout=120)  # building the /v1 app is slow on a loaded 2-core machine
    try:
        server.cli_json("accounts", "create", "acme")
        scopes = [a for s in ("studios:write", "sources:write", "sources:read") for a in ("--scope", s)]
        key = server.cli_json("keys", "create", "--account", "acme", "--name", "ops", *scopes)
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key['secret']}"}) as http:
            studio = http.post("/v1/studios", json={"name": "s"}).json()
            source = http.post(f"/v1/studios/{studio['id']}/sources", json={"name": "cam", "kind": "rtmp"}).json()
        path = source["ingest"]["path"]
        minted = server.cli_json("tokens", "mint", "--path", path, "--action", "publish")
        url = minted["urls"]["rtmp"]
        assert url.startswith(f"rtmp://127.0.0.1:{real}/{path}?")
        rc, err = asyncio.run(run(publish_cmd(ffmpeg, url, 1, realtime=False), 60))
        assert rc == 0, err + server.log()
        assert f"publishing {path}" in server.log()
        assert minted["token"] not in server.log()  # credentials never reach the log
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("rtmps", "message"),
    [
        ({"enabled": True}, "certfile and keyfile"),
        ({"enabled": True, "certfile": "/nonexistent.pem", "keyfile": "/nonexistent.key"}, "cannot load"),
        ({"enabled": True, "port": 99999}, "port"),
        ({"enabled": True, "max_chunk_size": 1}, "max_chunk_size"),
    ],
)
def test_bad_rtmps_options_fail_at_start_up_with_the_field(
    tmp_path: Path, rtmps: dict[str, object], message: str
) -> None:
    from tests.conftest import memory_settings
    from trax.runtime import Runtime
    from trax.settings import ConfigError

    with pytest.raises(ConfigError, match=message) as info:
        Runtime(memory_settings(tmp_path, ingest={"rtmps": rtmps}))  # type: ignore[arg-type]
    assert "rtmps" in str(info.value)
