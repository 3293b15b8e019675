"""The HTTP door of a real ``trax serve``: slow heads, too many connections, stalled bodies, bounded shutdown.

Each test configures small limits (``server.http.*``, ``ingest.whip.http.*``) so it stays short; the
attacker's sockets come from 127.0.0.1 and the well-behaved client from 127.0.0.2 (a server bound to
127.0.0.1 accepts connections from any loopback source address on Linux).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerProcess, dev_config
from trax.ports import free_port

pytestmark = pytest.mark.slow

GUARD = 8.0  # seconds a test waits for something that must happen well before


def _server(tmp_path: Path, *, whip: dict[str, Any] | None = None, **http: Any) -> ServerProcess:
    config = dev_config(tmp_path)
    config["server"]["http"] = http
    if whip is not None:
        config["ingest"] = {"whip": {"enabled": True, "host_candidates": ["127.0.0.1"], **whip}}
    return ServerProcess(config, tmp_path)


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(GUARD)
    s.connect(("127.0.0.1", port))
    return s


def _is_closed(s: socket.socket, wait: float) -> bool:
    """True when the server closed ``s`` within ``wait`` seconds (EOF or reset), False if it is still open."""
    s.settimeout(wait)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _health(port: int, source: str) -> int:
    s = _connect(port, source)
    try:
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
        return int(reply.split(b" ", 2)[1])
    finally:
        s.close()


def _slow_post(server: ServerProcess, length: int) -> bytes:
    """The head of a studio create by a real key, and the body's first bytes (the handler reads the body)."""
    server.cli_json("accounts", "create", "acme")
    key = server.cli_json("keys", "create", "--account", "acme", "--name", "k", "--scope", "studios:write")["secret"]
    return (
        f"POST /v1/studios HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
        f'Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{"name": "ha'
    ).encode()


@contextlib.contextmanager
def _sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for s in opened:
            s.close()


def test_slow_heads_are_closed_at_the_header_deadline(tmp_path: Path) -> None:
    with _server(tmp_path, header_timeout_seconds=1) as server, _sockets() as socks:
        silent = _connect(server.port)  # connects, sends nothing
        dripping = _connect(server.port)  # a byte of the head every 0.2 s, forever
        socks += [silent, dripping]
        dripping.sendall(b"GET /v1/health HTTP/1.1\r\nHost: t\r\n")
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < GUARD:
            try:
                dripping.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if _is_closed(dripping, 0.2):
                closed = True
                break
        assert closed, "a head dripping in byte by byte was never cut off"
        assert _is_closed(silent, GUARD)
        # a request after a response gets a fresh deadline, and a prompt client is served throughout
        assert _health(server.port, "127.0.0.2") == 200


def test_a_head_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    with _server(tmp_path, max_header_bytes=2048) as server, _sockets() as socks:
        s = _connect(server.port)
        socks.append(s)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * 8192 + b"\r\n\r\n")
        reply = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := s.recv(65536):
                reply += chunk
        assert reply.split(b" ", 2)[1] in (b"400", b"431"), reply[:100]
        assert _health(server.port, "127.0.0.2") == 200


def test_connections_past_the_per_address_cap_are_closed_at_once(tmp_path: Path) -> None:
    with (
        _server(tmp_path, max_connections_per_address=4, header_timeout_seconds=60) as server,
        _sockets() as socks,
    ):
        socks += [_connect(server.port) for _ in range(10)]
        closed = [s for s in socks if _is_closed(s, 0.5)]
        assert len(closed) == 6
        assert _health(server.port, "127.0.0.2") == 200
        # a slot freed by the attacker is theirs again, no more
        next(s for s in socks if s not in closed).close()
        time.sleep(0.2)
        again = [_connect(server.port) for _ in range(2)]
        socks += again
        assert [_is_closed(s, 0.5) for s in again] == [False, True]


def test_connections_past_the_global_cap_are_closed_at_once(tmp_path: Path) -> None:
    with (
        _server(tmp_path, max_connections=5, max_connections_per_address=100, header_timeout_seconds=60) as server,
        _sockets() as socks,
    ):
        socks += [_connect(server.port) for _ in range(5)]
        late = _connect(server.port, "127.0.0.2")
        socks.append(late)
        assert _is_closed(late, 1.0)
        assert not any(_is_closed(s, 0.2) for s in socks[:5])
        socks[0].close()
        time.sleep(0.2)
        assert _health(server.port, "127.0.0.2") == 200


def test_a_stalled_body_is_dropped_and_logged_quietly(tmp_path: Path) -> None:
    with _server(tmp_path, body_idle_timeout_seconds=1) as server, _sockets() as socks:
        post = _slow_post(server, 100)
        s = _connect(server.port)
        socks.append(s)
        s.sendall(post)
        assert _is_closed(s, GUARD), "a body that stopped arriving kept its connection"
        assert _health(server.port, "127.0.0.2") == 200
        assert "Traceback" not in server.log() and "unhandled error" not in server.log()


def test_sigterm_is_not_held_up_by_a_slow_upload(tmp_path: Path) -> None:
    server = _server(tmp_path, graceful_shutdown_seconds=1, body_idle_timeout_seconds=60)
    with server, _sockets() as socks:
        post = _slow_post(server, 100_000)
        s = _connect(server.port)
        socks.append(s)
        s.sendall(post)
        time.sleep(0.3)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        while server.proc.poll() is None and time.monotonic() - start < GUARD:
            with contextlib.suppress(OSError):
                s.sendall(b"a")  # a live, slowly moving upload: never idle
            time.sleep(0.1)
        assert server.proc.poll() is not None, "SIGTERM waited on a slow upload past the graceful timeout"


def test_the_whip_endpoint_has_the_same_door(tmp_path: Path) -> None:
    pytest.importorskip("aiortc")
    port = free_port()
    whip = {"port": port, "http": {"max_connections_per_address": 3, "header_timeout_seconds": 1}}
    with _server(tmp_path, whip=whip), _sockets() as socks:
        socks += [_connect(port) for _ in range(5)]
        assert [_is_closed(s, 0.3) for s in socks].count(True) == 2
        assert all(_is_closed(s, GUARD) for s in socks), "the WHIP endpoint kept silent connections open"
