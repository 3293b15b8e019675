"""Real ffmpeg (Debian's) publishing and playing over RTMP and RTMPS against the listener."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.rtmp.support import count_hub_packets, decode_h264, new_source, port, publish_cmd, rtmp_runtime, run
from tests.support.tools import require_tool
from trax.domain.events import Event
from trax.runtime import Runtime

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FPS = 25


def status_log(rt: Runtime, path: str) -> list[str]:
    seen: list[str] = []

    async def on_event(event: Event) -> None:
        if event.type == "source.status_changed" and event.data.get("path") == path:
            seen.append(event.data["status"])

    rt.bus.subscribe(on_event)
    return seen


async def settle(predicate: Any, limit: float = 10.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():  # noqa: ASYNC110 - polls state owned by the hub and the event bus
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("scheme", ["rtmp", "rtmps"])
async def test_ffmpeg_publishes_h264_aac_with_a_token(tmp_path: Path, scheme: str) -> None:
    ffmpeg = require_tool("ffmpeg")
    seconds = 4
    async with rtmp_runtime(tmp_path, tls=scheme == "rtmps") as rt:
        src, _ = await new_source(rt)
        statuses = status_log(rt, src.path)
        # expires mid-stream: an established session outlives its token (TRaX)
        cred = await rt.media_tokens.mint(path=src.path, action="publish", ttl=2)
        url = f"{scheme}://127.0.0.1:{port(rt, scheme)}/{src.path}?user=trax&pass={cred.token}"
        counting = asyncio.create_task(count_hub_packets(rt, src.path, until_s=60))
        rc, err = await run(publish_cmd(ffmpeg, url, seconds), 60)
        assert rc == 0, err
        got = await counting
        sent = seconds * FPS
        video, audio = got["tracks"]
        assert (video.codec, audio.codec, audio.sample_rate) == ("h264", "aac", 44100)
        assert got["video"] >= 0.95 * sent
        assert decode_h264(got["video_data"]) >= 0.95 * sent
        assert got["audio"] >= 0.95 * seconds * 44100 / 1024
        await settle(lambda: statuses[-1:] == ["idle"])
        assert statuses == ["connecting", "live", "idle"]
        assert rt.hub.publisher(src.path) is None


@pytest.mark.parametrize("scheme", ["rtmp", "rtmps"])
async def test_ffmpeg_plays_a_live_path_with_a_read_token(tmp_path: Path, scheme: str) -> None:
    av = pytest.importorskip("av")
    ffmpeg = require_tool("ffmpeg")
    seconds = 4
    out = tmp_path / "played.flv"
    async with rtmp_runtime(tmp_path, tls=scheme == "rtmps") as rt:
        src, _ = await new_source(rt)
        read = await rt.media_tokens.mint(path=src.path, action="read")
        publish = await rt.media_tokens.mint(path=src.path, action="publish")
        base = f"rtmp://127.0.0.1:{port(rt)}/{src.path}"
        play_url = f"{scheme}://127.0.0.1:{port(rt, scheme)}/{src.path}?user=trax&pass={read.token}"
        play_cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
        play_cmd += ["-i", play_url, "-c", "copy", "-f", "flv", str(out)]
        player = asyncio.create_task(run(play_cmd, 60))
        # the player waits for the publisher: start publishing once it is attached
        await settle(lambda: sum(len(w) for w in rt.hub._waiting.values()) == 1)
        rc, err = await run(publish_cmd(ffmpeg, f"{base}?token={publish.token}", seconds), 60)
        assert rc == 0, err
        prc, perr = await player
        assert prc == 0, perr
    with av.open(str(out)) as container:
        frames = sum(len(p.decode()) for p in container.demux(video=0))
    assert frames >= 0.95 * seconds * FPS


async def test_refusals_end_ffmpeg_at_connect_before_media(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    async with rtmp_runtime(tmp_path) as rt:
        src, op = await new_source(rt)
        other, _ = await new_source(rt)
        statuses = status_log(rt, src.path)
        _, key = await rt.services.sources.rotate_stream_key(op, src.studio_id, src.id)
        wrong_path = await rt.media_tokens.mint(path=other.path, action="publish")
        read_only = await rt.media_tokens.mint(path=src.path, action="read")
        expired = await rt.media_tokens.mint(path=src.path, action="publish", ttl=1)
        base = f"rtmp://127.0.0.1:{port(rt)}"
        cases = {
            "wrong path": f"{base}/{src.path}?user=trax&pass={wrong_path.token}",
            "wrong action": f"{base}/{src.path}?user=trax&pass={read_only.token}",
            "expired": f"{base}/{src.path}?user=trax&pass={expired.token}",
            "garbage": f"{base}/{src.path}?token=not-a-token",
            "no credential": f"{base}/{src.path}",
            "legacy /live/<key>": f"{base}/live/{key}",
            "key as stream name": f"{base}/inputs/{key}",
        }
        publish_token = await rt.media_tokens.mint(path=src.path, action="publish")
        play = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "flv", "-i"]
        plays = {
            "play with a publish token": f"{base}/{src.path}?user=trax&pass={publish_token.token}",
            "play with garbage": f"{base}/{src.path}?token=x.y.z",
        }
        await asyncio.sleep(2.1)  # let the expired token expire
        commands = [publish_cmd(ffmpeg, url, 5) for url in cases.values()]
        commands += [[*play, url, "-f", "null", "-"] for url in plays.values()]
        cases.update(plays)
        results = await asyncio.gather(*(run(cmd, 30) for cmd in commands))
        for (case, _), (rc, err) in zip(cases.items(), results, strict=True):
            assert rc not in (0, -9), f"{case}: ffmpeg exit {rc}"
            assert "Server error" in err or "Input/output" in err or "error" in err.lower(), f"{case}: {err}"
        assert statuses == []  # nothing ever reached the hub for the path
        assert rt.hub.publisher(src.path) is None


async def test_stream_key_through_the_adobe_challenge(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    async with rtmp_runtime(tmp_path) as rt:
        src, op = await new_source(rt)
        src, key = await rt.services.sources.rotate_stream_key(op, src.studio_id, src.id)
        stream = src.path.split("/", 1)[1]
        # FFmpeg answers the challenge but does not start it: ?authmod=adobe on the app asks for it
        good = f"rtmp://{key}:{key}@127.0.0.1:{port(rt)}/inputs?authmod=adobe/{stream}"
        bad = f"rtmp://{key}x:{key}x@127.0.0.1:{port(rt)}/inputs?authmod=adobe/{stream}"
        counting = asyncio.create_task(count_hub_packets(rt, src.path, until_s=60))
        (rc_good, err_good), (rc_bad, err_bad) = await asyncio.gather(
            run(publish_cmd(ffmpeg, good, 2), 60), run(publish_cmd(ffmpeg, bad, 2), 60)
        )
        assert rc_good == 0, err_good
        assert rc_bad != 0 and "Incorrect username/password" in err_bad
        assert (await counting)["video"] >= 0.95 * 2 * FPS


async def test_second_publisher_on_a_path_is_refused(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    async with rtmp_runtime(tmp_path, ingest_settings={"publisher_takeover": False}) as rt:
        src, _ = await new_source(rt)
        cred = await rt.media_tokens.mint(path=src.path, action="publish")
        url = f"rtmp://127.0.0.1:{port(rt)}/{src.path}?user=trax&pass={cred.token}"
        first = asyncio.create_task(run(publish_cmd(ffmpeg, url, 4), 60))
        await settle(lambda: rt.hub.publisher(src.path) is not None)
        rc, err = await run(publish_cmd(ffmpeg, url, 2), 30)
        assert rc != 0 and "already has a publisher" in err
        assert (await first)[0] == 0
