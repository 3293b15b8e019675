"""Until a publish/play is authorised an RTMP client may cost little, briefly (docs/rtmp.md)."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.rtmp.support import RawClient, new_source, port, publish_cmd, rtmp_runtime, run
from tests.support.tools import require_tool
from trax.ingest.rtmp import messages as m
from trax.ingest.rtmp.chunks import ChunkReader
from trax.ingest.rtmp.session import RtmpSession

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _video_header(length: int, csid: int = 6) -> bytes:
    """A type-0 chunk header announcing a ``length``-byte video message on stream 1 (its body follows)."""
    return bytes([csid]) + b"\x00\x00\x00" + length.to_bytes(3, "big") + b"\x09" + struct.pack("<I", 1)


async def _connected(p: int, *, source: str | None = None) -> RawClient:
    c = await _open(p, source=source)
    await c.handshake()
    c.command("connect", {"app": "inputs", "tcUrl": f"rtmp://127.0.0.1:{p}/inputs"})
    await c.expect("_result")
    return c


async def _open(p: int, *, source: str | None = None) -> RawClient:
    """A client socket, bound to ``source`` (another loopback address) when given."""
    if source is None:
        return await RawClient.open(p)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", p))
    reader, writer = await asyncio.open_connection(sock=sock)
    return RawClient(reader, writer)


async def _trickle(c: RawClient, total: int, step: int = 1024, every: float = 0.05) -> None:
    """Send ``total`` bytes of a message body slowly, as an attacker holding memory would."""
    sent = 0
    while sent < total and not c.writer.is_closing():
        c.writer.write(b"\x00" * step)
        sent += step
        try:
            await c.writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(every)


async def test_large_message_before_publish_drops_the_connection(tmp_path: Path) -> None:
    """Only command-sized messages before authorisation: a 1 MiB one (fine for a publisher) ends the client."""
    async with rtmp_runtime(tmp_path) as rt:
        listener: Any = rt.transports["rtmp"]
        c = await _connected(port(rt))
        c.writer.write(_video_header(1024 * 1024))
        trickling = asyncio.create_task(_trickle(c, 256 * 1024))
        try:
            assert await c.closed_by_peer(limit=5)
        finally:
            trickling.cancel()
            c.close()
        assert listener.buffered_bytes <= listener.options.unauthenticated_max_message_size


async def test_buffered_bytes_are_capped_across_connections(tmp_path: Path) -> None:
    """Many clients each under their own limit cannot together exceed the listener's budget."""
    cap = 64 * 1024
    async with rtmp_runtime(
        tmp_path, max_buffered_bytes=cap, unauthenticated_max_message_size=16 * 1024, auth_timeout=10
    ) as rt:
        listener: Any = rt.transports["rtmp"]
        p = port(rt)
        clients = [await _connected(p) for _ in range(8)]
        peak = 0
        for c in clients:
            c.send(m.SET_CHUNK_SIZE, struct.pack(">I", 65536), csid=2)
            # 15 KiB of a 16 KiB message: each one alone is allowed, and is held until the rest arrives
            c.writer.write(_video_header(16 * 1024) + b"\x00" * (15 * 1024))
            await c.writer.drain()
            await asyncio.sleep(0.1)
            peak = max(peak, listener.buffered_bytes)
        closed = await asyncio.gather(*(c.closed_by_peer(limit=1) for c in clients))
        assert peak <= cap
        assert 0 < sum(closed) < len(clients)  # those that would exceed the budget are dropped, the rest held
        for c in clients:
            c.close()
        async with asyncio.timeout(5):
            while listener.sessions:  # noqa: ASYNC110 - state of the listener
                await asyncio.sleep(0.05)
        assert listener.buffered_bytes == 0  # every connection's bytes are returned when it closes
        assert listener.addresses == 0
        del c
        clients.clear()  # the test's own clients have chunk readers too
        gc.collect()
        kept = [o for o in gc.get_objects() if isinstance(o, (RtmpSession, ChunkReader))]
        assert kept == []  # nothing holds a closed session or its buffers


async def test_client_that_never_publishes_is_dropped_after_the_deadline(tmp_path: Path) -> None:
    """Pings keep a connection alive past the idle timeout, but not past the authorisation deadline."""
    async with rtmp_runtime(tmp_path, auth_timeout=1.5) as rt:
        c = await _connected(port(rt))
        c.command("createStream", None)
        await c.expect("_result")

        async def ping() -> None:
            while not c.writer.is_closing():
                c.send(m.USER_CONTROL, b"\x00\x06" + b"\x00\x00\x00\x01", csid=2)
                await asyncio.sleep(0.2)

        pinging = asyncio.create_task(ping())
        try:
            assert await c.closed_by_peer(limit=6)
        finally:
            pinging.cancel()
            c.close()


async def test_authorised_publisher_may_send_large_messages(tmp_path: Path) -> None:
    """After publish is authorised the larger limits apply: the deadline and small-message rule are gone."""
    async with rtmp_runtime(tmp_path, auth_timeout=1.0) as rt:
        src, _ = await new_source(rt)
        token = (await rt.media_tokens.mint(path=src.path, action="publish")).token
        c = await _connected(port(rt))
        c.command("createStream", None)
        sid = int((await c.expect("_result"))[3])
        c.command("publish", None, f"{src.path.split('/', 1)[1]}?token={token}", "live", stream_id=sid)
        status = await c.expect("onStatus")
        assert status[3]["code"] == "NetStream.Publish.Start"
        await asyncio.sleep(1.5)  # past the authorisation deadline
        big = 64 * 1024
        c.send(m.USER_CONTROL, b"\x00\x06" + b"\x00\x00\x00\x07" + b"\x00" * big, csid=2)
        await c.writer.drain()
        async with asyncio.timeout(5):
            while True:
                msg = await c.chunks.read_message()
                if msg.type_id == m.USER_CONTROL and msg.payload[:2] == b"\x00\x07":
                    break
        c.close()


async def test_idle_sockets_from_one_address_do_not_lock_out_an_encoder(tmp_path: Path) -> None:
    """An address past its cap of unauthorised connections is refused; a real ffmpeg from elsewhere gets in."""
    ffmpeg = require_tool("ffmpeg")
    async with rtmp_runtime(tmp_path, max_connections=12, max_unauthenticated_per_address=4, auth_timeout=10) as rt:
        listener: Any = rt.transports["rtmp"]
        p = port(rt)
        try:
            attackers = [await _open(p, source="127.0.0.2") for _ in range(16)]
        except OSError:
            pytest.skip("127.0.0.2 is not usable as a source address here")
        refused = await asyncio.gather(*(c.closed_by_peer(limit=1) for c in attackers))
        assert sum(not r for r in refused) <= 4  # held open: at most the per-address cap
        assert listener.sessions <= 4
        src, _ = await new_source(rt)
        token = (await rt.media_tokens.mint(path=src.path, action="publish")).token
        url = f"rtmp://127.0.0.1:{p}/{src.path}?user=trax&pass={token}"
        rc, err = await run(publish_cmd(ffmpeg, url, 1.0, realtime=False), 30)
        assert rc == 0, err
        for c in attackers:
            c.close()


async def test_rtmps_sockets_stalled_in_tls_count_against_their_address(tmp_path: Path) -> None:
    """The per-address cap applies from the TCP accept, before the TLS handshake, not only after it."""
    rtmps = {"handshake_timeout": 5.0, "max_unauthenticated_per_address": 2}
    async with rtmp_runtime(tmp_path, tls=True, rtmps_options=rtmps) as rt:
        listener: Any = rt.transports["rtmps"]
        p = port(rt, "rtmps")
        try:
            stalled = [await _open(p, source="127.0.0.2") for _ in range(6)]
        except OSError:
            pytest.skip("127.0.0.2 is not usable as a source address here")
        for c in stalled:
            c.writer.write(b"\x16\x03\x01\x02\x00")  # a TLS record header, then nothing
        closed = await asyncio.gather(*(c.closed_by_peer(limit=1) for c in stalled))
        assert sum(not x for x in closed) <= 2
        assert listener.sessions <= 2
        for c in stalled:
            c.close()
