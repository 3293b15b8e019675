"""Publisher takeover with real encoders: a second authorised ffmpeg replaces the first; a player keeps playing."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.rtmp.support import new_source, port, publish_cmd, rtmp_runtime, run
from tests.ingest.srt_support import require_srt
from tests.support.tools import require_tool
from trax.ingest.srt import libsrt
from trax.ports import free_port
from trax.runtime import Runtime

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FPS = 25


def srt_publish_cmd(ffmpeg: str, url: str, seconds: float) -> list[str]:
    cmd = publish_cmd(ffmpeg, url, seconds)
    return [*cmd[:-3], "-f", "mpegts", url]


def urls(rt: Runtime, protocol: str, path: str, token: str, action: str) -> str:
    if protocol == "rtmp":
        return f"rtmp://127.0.0.1:{port(rt)}/{path}?user=trax&pass={token}"
    srt_port = rt.transports["srt"].port  # type: ignore[attr-defined]
    return f"srt://127.0.0.1:{srt_port}?streamid={action}:{path}:trax:{token}"


def decoded(path: Path) -> int:
    import av

    if not path.exists() or not path.stat().st_size:
        return 0
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def wait_for(predicate: Any, limit: float = 15) -> None:
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - polls the hub
            await asyncio.sleep(0.05)


def settings(takeover: bool) -> dict[str, Any]:
    return {"publisher_takeover": takeover, "srt": {"enabled": True, "port": free_port(socket.SOCK_DGRAM)}}


@pytest.mark.parametrize("protocol", ["rtmp", "srt"])
async def test_a_second_publisher_takes_over_and_the_player_keeps_playing(tmp_path: Path, protocol: str) -> None:
    pytest.importorskip("av")
    ffmpeg = require_tool("ffmpeg")
    require_srt()
    out = tmp_path / "played.ts"
    async with rtmp_runtime(tmp_path, ingest_settings=settings(True)) as rt:
        src, _ = await new_source(rt)
        pub_token = (await rt.media_tokens.mint(path=src.path, action="publish", audience="trax-ingest")).token
        read_token = (await rt.media_tokens.mint(path=src.path, action="read", audience="trax-ingest")).token
        cmd = srt_publish_cmd if protocol == "srt" else publish_cmd
        url = urls(rt, protocol, src.path, pub_token, "publish")
        first = asyncio.create_task(run(cmd(ffmpeg, url, 20), 40))
        await wait_for(lambda: (p := rt.hub.publisher(src.path)) is not None and p.keyframes > 0)
        play = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        play += ["-i", urls(rt, protocol, src.path, read_token, "read"), "-c", "copy", "-f", "mpegts", str(out)]
        player = asyncio.create_task(run(play, 40))
        await wait_for(lambda: (p := rt.hub.publisher(src.path)) is not None and p.readers == 1)
        await asyncio.sleep(1.5)
        old = rt.hub.publisher(src.path)
        started = time.monotonic()
        rc2, err2 = await run(cmd(ffmpeg, url, 4), 30)  # takes over at once, streams 4 s, ends
        assert rc2 == 0, err2
        assert old is not None and old.taken_over
        # the first encoder was disconnected, not left to run its 20 s
        rc1, err1 = await asyncio.wait_for(first, 10)
        assert rc1 != 0
        if protocol == "rtmp":  # the encoder is told why
            assert "Taken over by a new publisher" in err1, err1
        assert time.monotonic() - started < 12
        rc_play, err_play = await asyncio.wait_for(player, 20)
        assert rc_play == 0, err_play
        # ~1.5 s from the first, ~4 s from the second: the player went on with the second encoder
        assert decoded(out) >= 1.0 * FPS + 3 * FPS


@pytest.mark.parametrize("protocol", ["rtmp", "srt"])
async def test_with_takeover_off_the_second_publisher_is_refused(tmp_path: Path, protocol: str) -> None:
    ffmpeg = require_tool("ffmpeg")
    require_srt()
    async with rtmp_runtime(tmp_path, ingest_settings=settings(False)) as rt:
        src, _ = await new_source(rt)
        token = (await rt.media_tokens.mint(path=src.path, action="publish", audience="trax-ingest")).token
        cmd = srt_publish_cmd if protocol == "srt" else publish_cmd
        url = urls(rt, protocol, src.path, token, "publish")
        first = asyncio.create_task(run(cmd(ffmpeg, url, 4), 30))
        await wait_for(lambda: (p := rt.hub.publisher(src.path)) is not None and p.packets > 0)
        owner = rt.hub.publisher(src.path)
        rc2, _ = await run(cmd(ffmpeg, url, 1), 20)
        assert rc2 != 0
        assert rt.hub.publisher(src.path) is owner
        rc1, err1 = await first
        assert rc1 == 0, err1
        if protocol == "srt":
            assert rt.transports["srt"].refused.get(libsrt.REJX_CONFLICT) == 1  # type: ignore[attr-defined]
