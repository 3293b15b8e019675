"""The SRT listener with real ffmpeg on loopback: publish, read, refusals at the handshake."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from pathlib import Path

import pytest

from tests.ingest.srt_support import (
    AUDIO_FRAMES,
    FPS,
    FRAMES,
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
from trax.domain.sources import SourceStatus
from trax.ingest.srt import libsrt

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_ffmpeg_publishes_and_reads_over_srt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_srt()
    caplog.set_level(logging.INFO, logger="trax.ingest.srt.listener")
    async with srt_env(tmp_path, latency_ms=400) as env:  # room for a loaded machine's stalls
        pub_token = await env.token("publish")
        read_token = await env.token("read")
        out = tmp_path / "read.ts"
        hub_side = asyncio.create_task(collect(env))
        # the player connects first and waits for the publisher, so it can see every frame
        player = asyncio.create_task(run(read_cmd(env.url(f"read:{env.path}:trax:{read_token}"), out), limit=40))
        for _ in range(100):
            if env.transport.connections:
                break
            await asyncio.sleep(0.05)
        assert env.transport.connections == 1, "the reader was not accepted"

        url = env.url(f"publish:{env.path}:trax:{pub_token}", linger="2")
        rc, err = await run(publish_cmd(url), limit=40)
        assert rc == 0, err

        tracks, packets = await asyncio.wait_for(hub_side, 20)
        assert [(t.kind, t.codec) for t in tracks] == [("video", "h264"), ("audio", "aac")]
        received = decoded_frames(tracks, packets)
        assert received.get("video", 0) >= 0.95 * FRAMES, received
        assert received.get("audio", 0) >= 0.95 * AUDIO_FRAMES, received
        audio = [p for p in packets if p.track == 1]
        assert all(b.pts > a.pts for a, b in itertools.pairwise(audio)), "audio timestamps must advance"

        prc, perr = await asyncio.wait_for(player, 30)
        played = decoded_file_frames(out)
        assert played.get("video", 0) >= 0.95 * FRAMES, (played, prc, perr)
        assert played.get("audio", 0) >= 0.95 * AUDIO_FRAMES, played
        # the tail too: closing right after the last send used to cut the player's last ~100 ms
        assert played["video"] >= received["video"] - 1 and played["audio"] >= received["audio"] - 2, (played, received)

        for _ in range(100):
            if env.statuses()[-1:] == ["idle"]:
                break
            await asyncio.sleep(0.05)
        assert env.statuses() == ["connecting", "live", "idle"]
        source = await env.runtime.services.sources.by_path(env.path)
        assert source is not None and source.status is SourceStatus.IDLE
        # libsrt's own counters (srt_bstats through the binding) reach the log
        assert re.search(r"stopped publishing \S+: \d+ media packets, \d+ bytes; SRT packets lost \d+", caplog.text)


async def test_access_control_streamid_form_publishes(tmp_path: Path) -> None:
    require_srt()
    async with srt_env(tmp_path) as env:
        token = await env.token("publish")
        hub_side = asyncio.create_task(collect(env))
        # '#' raw inside the query: ffmpeg 5.1 passes the streamid through verbatim
        rc, err = await run(publish_cmd(env.url(f"#!::r={env.path},m=publish,s={token}", linger="2"), seconds=2))
        assert rc == 0, err
        tracks, packets = await asyncio.wait_for(hub_side, 20)
        assert decoded_frames(tracks, packets).get("video", 0) >= 0.95 * 50


async def test_refusals_happen_in_the_handshake(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_srt()
    caplog.set_level(logging.WARNING, logger="trax.ingest.srt.listener")
    async with srt_env(tmp_path) as env:
        other = await env.runtime.services.sources.create(
            await _operator(env), await _studio(env), name="other", kind="srt"
        )
        good = await env.token("publish")
        expired = await env.token("publish", ttl=1)
        wrong_path = await env.token("publish", path=other.path)
        read_only = await env.token("read")
        await asyncio.sleep(2.1)  # let the 1-second token expire (leeway 0 in this deployment)
        tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
        cases = {
            "garbage token": (f"publish:{env.path}:trax:not-a-token", libsrt.REJX_UNAUTHORIZED),
            "bad signature": (f"publish:{env.path}:trax:{tampered}", libsrt.REJX_UNAUTHORIZED),
            "expired": (f"publish:{env.path}:trax:{expired}", libsrt.REJX_UNAUTHORIZED),
            "wrong path": (f"publish:{env.path}:trax:{wrong_path}", libsrt.REJX_FORBIDDEN),
            "wrong action": (f"publish:{env.path}:trax:{read_only}", libsrt.REJX_FORBIDDEN),
            "percent-encoded": (f"publish%3A{env.path}%3Atrax%3A{good}", libsrt.REJX_BAD_REQUEST),
            "unknown path": (f"publish:inputs/nope:trax:{good}", libsrt.REJX_NOTFOUND),
        }
        for name, (streamid, code) in cases.items():
            before = env.transport.refused.get(code, 0)
            rc, err = await run(publish_cmd(env.url(streamid), seconds=2), limit=20)
            assert rc != 0, f"{name}: ffmpeg was accepted"
            assert "reject" in err.lower() or "input/output error" in err.lower(), (name, err)
            assert env.transport.refused.get(code, 0) == before + 1, name
        # libsrt itself caps the streamid at 512 bytes: ffmpeg fails before sending anything
        refused = sum(env.transport.refused.values())
        rc, _ = await run(publish_cmd(env.url(f"publish:{env.path}:trax:{good}{'x' * 512}"), seconds=2), limit=20)
        assert rc != 0
        assert sum(env.transport.refused.values()) == refused
        # nothing got through: no publisher ever opened, the Source never moved
        assert env.statuses() == []
        assert env.transport.connections == 0
        assert "percent-encoded" in caplog.text
        for secret in (good, expired, wrong_path, read_only):
            assert secret not in caplog.text


async def test_second_publisher_is_refused_with_conflict(tmp_path: Path) -> None:
    require_srt()
    async with srt_env(tmp_path, other_transports={"publisher_takeover": False}) as env:
        token = await env.token("publish")
        url = env.url(f"publish:{env.path}:trax:{token}")
        first = asyncio.create_task(run(publish_cmd(url, seconds=4), limit=30))
        for _ in range(200):
            if env.runtime.hub.publisher(env.path) is not None:
                break
            await asyncio.sleep(0.05)
        assert env.runtime.hub.publisher(env.path) is not None
        rc, _ = await run(publish_cmd(url, seconds=1), limit=20)
        assert rc != 0
        assert env.transport.refused.get(libsrt.REJX_CONFLICT) == 1
        rc1, err1 = await first
        assert rc1 == 0, err1


async def test_stream_key_is_checked_right_after_accept(tmp_path: Path) -> None:
    require_srt()
    async with srt_env(tmp_path) as env:
        op, studio = await _operator(env), await _studio(env)
        source = await env.runtime.services.sources.by_path(env.path)
        assert source is not None
        _, key = await env.runtime.services.sources.rotate_stream_key(op, studio, source.id)
        hub_side = asyncio.create_task(collect(env))
        rc, err = await run(publish_cmd(env.url(f"publish:{env.path}:{key}:{key}", linger="2"), seconds=2))
        assert rc == 0, err
        tracks, packets = await asyncio.wait_for(hub_side, 20)
        assert decoded_frames(tracks, packets).get("video", 0) >= 0.95 * 50
        # a wrong key is accepted provisionally, then closed before the path sees any media
        bad = "live_" + "x" * 32
        rc, _ = await run(publish_cmd(env.url(f"publish:{env.path}:{bad}:{bad}"), seconds=2), limit=20)
        assert rc != 0
        assert env.statuses().count("connecting") == 1
        # the failure is remembered: the same key is now refused in the handshake itself
        before = env.transport.refused.get(libsrt.REJX_UNAUTHORIZED, 0)
        rc, _ = await run(publish_cmd(env.url(f"publish:{env.path}:{bad}:{bad}"), seconds=1), limit=20)
        assert rc != 0
        assert env.transport.refused.get(libsrt.REJX_UNAUTHORIZED, 0) == before + 1


async def test_passphrase_is_required_when_configured(tmp_path: Path) -> None:
    require_srt()
    secret = "correct-horse-battery"  # ffmpeg 5.1 does not URL-decode SRT options
    async with srt_env(tmp_path, passphrase=secret, latency_ms=200) as env:
        token = await env.token("publish")
        streamid = f"publish:{env.path}:trax:{token}"
        rc, _ = await run(publish_cmd(env.url(streamid), seconds=1), limit=20)
        assert rc != 0, "a caller without the passphrase was accepted"
        rc, _ = await run(publish_cmd(env.url(streamid, passphrase="wrong passphrase"), seconds=1), limit=20)
        assert rc != 0, "a caller with the wrong passphrase was accepted"
        hub_side = asyncio.create_task(collect(env))
        rc, err = await run(publish_cmd(env.url(streamid, passphrase=secret, linger="2"), seconds=2))
        assert rc == 0, err
        tracks, packets = await asyncio.wait_for(hub_side, 20)
        assert decoded_frames(tracks, packets).get("video", 0) >= 0.95 * 50
        assert secret not in repr(env.transport.options)


async def test_connection_limit_refuses_with_overload(tmp_path: Path) -> None:
    require_srt()
    async with srt_env(tmp_path, max_connections=1, read_wait_seconds=30) as env:
        read_token = await env.token("read")
        out = tmp_path / "waiting.ts"
        waiting = asyncio.create_task(run(read_cmd(env.url(f"read:{env.path}:trax:{read_token}"), out), limit=60))
        for _ in range(200):
            if env.transport.connections:
                break
            await asyncio.sleep(0.05)
        assert env.transport.connections == 1
        token = await env.token("publish")
        rc, _ = await run(publish_cmd(env.url(f"publish:{env.path}:trax:{token}"), seconds=1), limit=20)
        assert rc != 0
        assert env.transport.refused.get(libsrt.REJX_OVERLOAD) == 1
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting


async def _operator(env: object) -> object:
    from trax.services import Principal

    rt = env.runtime  # type: ignore[attr-defined]
    src = await rt.services.sources.by_path(env.path)  # type: ignore[attr-defined]
    return Principal.operator(src.account_id)


async def _studio(env: object) -> str:
    rt = env.runtime  # type: ignore[attr-defined]
    src = await rt.services.sources.by_path(env.path)  # type: ignore[attr-defined]
    return str(src.studio_id)


async def test_hevc_and_opus_over_srt(tmp_path: Path) -> None:
    """ingest.md: SRT carries H.264/H.265 + AAC/Opus. ffmpeg publishes HEVC + Opus; a player reads it back."""
    ffmpeg = require_srt()
    async with srt_env(tmp_path, latency_ms=400) as env:
        token, read_token = await env.token("publish"), await env.token("read")
        out = tmp_path / "hevc.ts"
        hub_side = asyncio.create_task(collect(env))
        player = asyncio.create_task(run(read_cmd(env.url(f"read:{env.path}:trax:{read_token}"), out), limit=40))
        for _ in range(100):
            if env.transport.connections:
                break
            await asyncio.sleep(0.05)
        cmd = [
            ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}:duration={SECONDS}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}",
            "-c:v", "libx265", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS), "-pix_fmt", "yuv420p",
            "-x265-params", "log-level=error", "-c:a", "libopus", "-b:a", "64k",
            "-f", "mpegts", env.url(f"publish:{env.path}:trax:{token}", linger="2"),
        ]  # fmt: skip
        rc, err = await run(cmd, limit=40)
        assert rc == 0, err
        tracks, packets = await asyncio.wait_for(hub_side, 20)
        assert [(t.kind, t.codec) for t in tracks] == [("video", "hevc"), ("audio", "opus")]
        received = decoded_frames(tracks, packets)
        assert received.get("video", 0) >= 0.95 * FRAMES, received
        assert received.get("audio", 0) >= 0.95 * SECONDS * 50, received  # 20 ms Opus frames
        await asyncio.wait_for(player, 30)
        played = decoded_file_frames(out)
        assert played.get("video", 0) >= 0.95 * FRAMES and played.get("audio", 0) >= 0.95 * SECONDS * 50, played
