"""The door's protocol classes under a real uvicorn on 127.0.0.1, for both of uvicorn's parsers.

``trax serve`` uses httptools when installed (tests/api/test_http_door.py covers it end to end);
here each parser runs behind a tiny ASGI app that reads the whole body, so the h11 fallback is held
to the same behaviour. The admission table is checked on its own.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn

from trax.http_door import Admission, address_key, uvicorn_config
from trax.settings import HttpDoorSettings

PARSERS = ["h11", "httptools"]


async def _read_all(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@asynccontextmanager
async def _serving(parser: str, **limits: Any) -> AsyncIterator[int]:
    if parser == "httptools":
        pytest.importorskip("httptools")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn_config(_read_all, "test", HttpDoorSettings(**limits), parser=parser, lifespan="off")
    config.log_level = "warning"
    server = uvicorn.Server(config)
    server.capture_signals = _no_signals  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


class _no_signals:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


async def _open(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def _get(port: int, source: str = "127.0.0.2") -> bytes:
    reader, writer = await _open(port, source)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    async with asyncio.timeout(5):
        reply = await reader.read()
    writer.close()
    return reply.split(b"\r\n", 1)[0]


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("parser", PARSERS)
async def test_head_deadline_and_body_idle_timeout(parser: str) -> None:
    async with _serving(parser, header_timeout_seconds=0.5, body_idle_timeout_seconds=0.5) as port:
        head_r, head_w = await _open(port)
        head_w.write(b"GET / HTTP/1.1\r\nHost: t\r\n")  # and nothing more
        body_r, body_w = await _open(port)
        body_w.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        assert await _closed_within(head_r, 5)
        assert await _closed_within(body_r, 5)
        # a keep-alive connection gets a fresh head deadline after each response
        r, w = await _open(port)
        w.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await r.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
        w.write(b"GET / HTTP/1.1\r\n")
        assert await _closed_within(r, 5)
        assert await _get(port) == b"HTTP/1.1 200 OK"
        for writer in (head_w, body_w, w):
            writer.close()


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("parser", PARSERS)
async def test_a_moving_body_is_not_idle(parser: str) -> None:
    async with _serving(parser, body_idle_timeout_seconds=0.4) as port:
        r, w = await _open(port)
        w.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\n")
        for _ in range(8):  # 8 bytes over ~1.6 s, never 0.4 s apart
            await asyncio.sleep(0.2)
            w.write(b"x")
        assert (await asyncio.wait_for(r.readuntil(b"ok"), 5)).startswith(b"HTTP/1.1 200")
        w.close()


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("parser", PARSERS)
async def test_per_address_cap_and_slowly_growing_head(parser: str) -> None:
    async with _serving(parser, max_connections_per_address=3, max_header_bytes=1024) as port:
        conns = [await _open(port) for _ in range(5)]
        closed = [await _closed_within(r, 0.3) for r, _ in conns]
        assert closed.count(True) == 2
        assert await _get(port) == b"HTTP/1.1 200 OK"
        r, w = next(c for c, gone in zip(conns, closed, strict=True) if not gone)
        w.write(b"GET / HTTP/1.1\r\n")
        for _ in range(5):  # a head growing past 1 KiB in small reads
            w.write(b"X-Pad: " + b"a" * 300 + b"\r\n")
            await asyncio.sleep(0.05)
        assert await _closed_within(r, 5)
        for _, writer in conns:
            writer.close()


def test_address_buckets() -> None:
    assert address_key(("192.0.2.7", 5000)) == "192.0.2.7"
    assert address_key(("::ffff:192.0.2.7", 5000, 0, 0)) == "192.0.2.7"
    a = address_key(("2001:db8:1:2:aaaa::1", 5000, 0, 0))
    assert a == address_key(("2001:db8:1:2:ffff:ffff:ffff:ffff", 1, 0, 0)) == "2001:db8:1:2::/64"
    assert a != address_key(("2001:db8:1:3::1", 1, 0, 0))
    assert address_key(("fe80::1%eth0", 1, 0, 2)) == "fe80::/64"
    assert address_key(None) == address_key("/run/trax.sock") == "-"


def test_admission_counts_and_forgets() -> None:
    door = Admission("t", max_total=4, max_per_address=2)
    keys = [door.admit((f"10.0.0.{i}", 1)) for i in (1, 1, 1, 2, 3, 4)]
    assert keys == ["10.0.0.1", "10.0.0.1", None, "10.0.0.2", "10.0.0.3", None]
    for key in keys:
        if key is not None:
            door.release(key)
    assert door.total == 0 and door.open_from("10.0.0.1") == 0
    # attacker-chosen keys never pile up: only addresses with an open connection are held
    for i in range(10_000):
        key = door.admit((f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 1))
        assert key is not None
        door.release(key)
    assert "addresses=0" in repr(door)
