"""Random commands and messages after a valid handshake: no session ever crashes, every one ends."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.rtmp.support import RawClient, new_source, port, rtmp_runtime

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

NAMES = ["connect", "createStream", "publish", "play", "deleteStream", "FCPublish", "FCUnpublish", "releaseStream"]
NAMES += ["closeStream", "getStreamLength", "_checkbw", "unknown", ""]
APPS = ["inputs", "live", "inputs?authmod=adobe", "inputs?authmod=adobe&user=x&challenge=1&response=2&opaque=3.4"]
TC_URLS = ["rtmp://a:b@h/inputs", "rtmp://[::1", "rtmp://trax:x.y.z@h/inputs?token=a", ""]


def value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randint(0, 7 if depth < 3 else 4)
    if pick == 5:
        return {"app": rng.choice([*APPS, 3.0, None]), "tcUrl": rng.choice([*TC_URLS, 5.0])}
    if pick == 6:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if pick == 7:
        return {"k": value(rng, depth + 1)}
    return [None, True, rng.random() * 1e6, "inputs", "rtmp-" + "a" * rng.randint(0, 300)][pick]


async def one_client(p: int, stream: str, rng: random.Random) -> None:
    c = await RawClient.open(p)
    try:
        await c.handshake()
        if rng.random() < 0.7:
            c.command("connect", {"app": "inputs", "tcUrl": f"rtmp://127.0.0.1:{p}/inputs"})
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            sid = rng.choice([0, 1, 2, 99])
            if r < 0.6:
                c.command(rng.choice(NAMES), *[value(rng) for _ in range(rng.randint(0, 4))], stream_id=sid)
            elif r < 0.85:
                body = os.urandom(rng.randint(0, 300))
                c.send(
                    rng.choice([1, 2, 3, 4, 5, 6, 8, 9, 15, 17, 18, 22]), body, stream_id=sid, csid=rng.randint(2, 10)
                )
            else:
                c.command("publish", None, f"{stream}?token=x", "live", stream_id=1)
        await c.writer.drain()
        await c.closed_by_peer(limit=3)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass  # the server hung up mid-script: allowed
    finally:
        c.close()


async def test_random_sessions_never_crash_the_listener(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(5)
    caplog.set_level(logging.INFO, logger="trax.ingest.rtmp")
    async with rtmp_runtime(tmp_path, handshake_timeout=2.0, idle_timeout=2.0) as rt:
        listener = rt.transports["rtmp"]
        src, _ = await new_source(rt)
        stream = src.path.split("/", 1)[1]
        for _ in range(5):
            await asyncio.gather(*(one_client(port(rt), stream, random.Random(rng.random())) for _ in range(30)))
        async with asyncio.timeout(15):
            while listener.sessions:  # type: ignore[attr-defined]  # noqa: ASYNC110 - listener state
                await asyncio.sleep(0.05)
    crashes = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert crashes == [], [r.getMessage() for r in crashes]
    assert any("refused" in r.getMessage() or "rtmp:" in r.getMessage() for r in caplog.records)


async def test_rtmps_port_survives_garbage_and_stalled_tls(tmp_path: Path) -> None:
    async with rtmp_runtime(tmp_path, tls=True, rtmps_options={"handshake_timeout": 1.0}) as rt:
        listener = rt.transports["rtmps"]
        p = port(rt, "rtmps")
        garbage = await RawClient.open(p)
        garbage.writer.write(os.urandom(4096))
        stalled = await RawClient.open(p)
        stalled.writer.write(b"\x16\x03\x01\x02\x00")  # a TLS record header, then nothing
        # the stalled one is ended by the (TLS) handshake timeout
        results = await asyncio.gather(garbage.closed_by_peer(limit=5), stalled.closed_by_peer(limit=10))
        assert results == [True, True]
        async with asyncio.timeout(10):
            while listener.sessions:  # type: ignore[attr-defined]  # noqa: ASYNC110 - listener state
                await asyncio.sleep(0.05)
