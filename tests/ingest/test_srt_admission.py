"""SRT callers from one address cannot take every slot of the listener (docs/srt.md, "Limits")."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from tests.ingest.srt_support import idle_reader, publish_cmd, require_srt, run, srt_env
from trax.ingest.srt import libsrt

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_one_address_is_capped_and_an_encoder_from_another_gets_in(tmp_path: Path) -> None:
    require_srt()
    async with srt_env(tmp_path, max_connections=3, max_connections_per_address=2, read_wait_seconds=30) as env:
        read = await env.token("read")
        stop = threading.Event()
        streamid = f"read:{env.path}:trax:{read}"
        waiting = [
            asyncio.create_task(asyncio.to_thread(idle_reader, env.port, streamid, stop, source="127.0.0.2"))
            for _ in range(2)
        ]
        try:
            for _ in range(200):
                if env.transport.connections == 2:
                    break
                await asyncio.sleep(0.05)
            assert env.transport.connections == 2
            before = env.transport.refused.get(libsrt.REJX_OVERLOAD, 0)
            third = await asyncio.to_thread(idle_reader, env.port, streamid, threading.Event(), source="127.0.0.2")
            assert not third  # this address has its share
            assert env.transport.refused.get(libsrt.REJX_OVERLOAD, 0) == before + 1
            token = await env.token("publish")
            rc, err = await run(publish_cmd(env.url(f"publish:{env.path}:trax:{token}"), seconds=1), limit=20)
            assert rc == 0, err  # the listener still has room for a caller from elsewhere
        finally:
            stop.set()
            accepted = await asyncio.gather(*waiting)
        assert accepted == [True, True]
        for _ in range(200):
            if env.transport.connections == 0:
                break
            await asyncio.sleep(0.05)
        assert env.transport.addresses == 0  # nothing kept per address once its connections are gone


async def test_a_stream_key_check_that_hangs_ends_the_caller_at_the_deadline(tmp_path: Path) -> None:
    """Unauthorised callers are few per address and short-lived, even when storage does not answer."""
    require_srt()
    async with srt_env(tmp_path, auth_timeout_seconds=1.0, max_unauthenticated_per_address=1) as env:

        async def storage_hangs(*_: object, **__: object) -> dict[str, str]:
            await asyncio.sleep(60)
            return {}

        env.runtime.media_tokens.authorize = storage_hangs  # type: ignore[method-assign]
        key = "live_" + "k" * 32
        streamid = f"publish:{env.path}:{key}:{key}"
        stop = threading.Event()
        first = asyncio.create_task(asyncio.to_thread(idle_reader, env.port, streamid, stop, source="127.0.0.2"))
        try:
            for _ in range(100):
                if env.transport.connections:
                    break
                await asyncio.sleep(0.05)
            assert env.transport.connections == 1  # accepted provisionally; its key is being checked
            # a second unchecked caller from the same address is refused in the handshake
            assert not await asyncio.to_thread(idle_reader, env.port, streamid, threading.Event(), source="127.0.0.2")
            for _ in range(100):  # the check is abandoned after auth_timeout_seconds and the caller closed
                if not env.transport.connections:
                    break
                await asyncio.sleep(0.05)
            assert env.transport.connections == 0
            assert env.transport.addresses == 0
        finally:
            stop.set()
            await first
