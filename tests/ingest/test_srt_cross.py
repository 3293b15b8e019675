"""SRT beside the other protocols: an RTMP feed played over SRT, and ``trax serve`` running the listener."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.ingest.srt_support import (
    FPS,
    SECONDS,
    collect,
    decoded_file_frames,
    decoded_frames,
    publish_cmd,
    read_cmd,
    require_srt,
    run,
    srt_env,
)
from tests.support.server import ServerProcess, dev_config
from tests.support.tools import require_tool
from trax.ports import free_port

pytestmark = [pytest.mark.slow]


@pytest.mark.anyio
async def test_rtmp_publisher_is_read_over_srt_without_reencoding(tmp_path: Path) -> None:
    require_srt()
    async with srt_env(tmp_path, other_transports={"rtmp": {"enabled": True, "port": 0}}) as env:
        rtmp_port = env.runtime.transports["rtmp"].port  # type: ignore[attr-defined]
        token = await env.token("publish")
        read_token = await env.token("read")
        out = tmp_path / "from-rtmp.ts"
        player = asyncio.create_task(run(read_cmd(env.url(f"read:{env.path}:trax:{read_token}"), out), limit=40))
        for _ in range(100):
            if env.transport.connections:
                break
            await asyncio.sleep(0.05)
        assert env.transport.connections == 1
        rtmp_url = f"rtmp://127.0.0.1:{rtmp_port}/{env.path}?user=trax&pass={token}"
        cmd = publish_cmd(rtmp_url)
        cmd[cmd.index("mpegts")] = "flv"
        rc, err = await run(cmd, limit=40)
        assert rc == 0, err
        await asyncio.wait_for(player, 30)
        played = decoded_file_frames(out)
        assert played.get("video", 0) >= 0.95 * FPS * SECONDS, played
        assert played.get("audio", 0) > 0, played
        assert env.statuses()[:2] == ["connecting", "live"]


def test_serve_runs_srt_and_env_overrides_the_port(tmp_path: Path) -> None:
    require_srt()
    configured, real = free_port(), free_port()
    config = dev_config(tmp_path, ingest={"host": "127.0.0.1", "srt": {"enabled": True, "port": configured}})
    server = ServerProcess(config, tmp_path, env={"TRAX_INGEST__SRT__PORT": str(real)})
    server.start(timeout=120)  # building the /v1 app is slow on a loaded 2-core machine
    try:
        server.cli_json("accounts", "create", "acme")
        scopes = [a for s in ("studios:write", "sources:write", "sources:read") for a in ("--scope", s)]
        key = server.cli_json("keys", "create", "--account", "acme", "--name", "ops", *scopes)
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key['secret']}"}) as http:
            studio = http.post("/v1/studios", json={"name": "s"}).json()
            source = http.post(f"/v1/studios/{studio['id']}/sources", json={"name": "cam", "kind": "srt"}).json()
        path = source["ingest"]["path"]
        minted = server.cli_json("tokens", "mint", "--path", path, "--action", "publish", "--audience", "trax-ingest")
        url = minted["urls"]["srt"]
        assert url == f"srt://127.0.0.1:{real}?streamid=publish:{path}:trax:{minted['token']}"
        rc, err = asyncio.run(run(publish_cmd(url + "&linger=2", seconds=1), limit=60))
        assert rc == 0, err + server.log()
        assert f"publishing {path}" in server.log()
        assert minted["token"] not in server.log()  # credentials never reach the log
    finally:
        server.stop()


@pytest.mark.anyio
async def test_srt_live_transmit_publishes_with_chunks_cut_anywhere(tmp_path: Path) -> None:
    """libsrt's own tool as the encoder side: 1000-byte messages split TS packets; the demuxer resyncs."""
    require_srt()
    slt = require_tool("srt-live-transmit")
    async with srt_env(tmp_path) as env:
        token = await env.token("publish")
        hub_side = asyncio.create_task(collect(env))
        source = " ".join(publish_cmd("-", seconds=3)[:-1])  # the same encoder, writing TS to stdout
        target = f"srt://127.0.0.1:{env.port}?streamid=publish:{env.path}:trax:{token}"
        proc = await asyncio.create_subprocess_shell(
            f"{source} - | {slt} -q -chunk:1000 file://con '{target}'",
            start_new_session=True,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            # srt-live-transmit does not exit at the end of its input: wait for the path, then for silence
            for _ in range(300):
                if env.statuses()[-1:] == ["live"]:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(4)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            await proc.wait()
        tracks, packets = await asyncio.wait_for(hub_side, 20)
        assert decoded_frames(tracks, packets).get("video", 0) >= 0.95 * FPS * 3
