"""The ctypes binding against the real libsrt: addresses, the listen callback, rejection reasons on the caller."""

from __future__ import annotations

import asyncio
import ctypes
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.tools import require
from trax.ingest.srt import libsrt


@pytest.fixture
def lib() -> Iterator[libsrt.LibSrt]:
    require(libsrt.available(), "libsrt 1.5 is not installed (Debian libsrt1.5-openssl)")
    binding = libsrt.load()
    binding.startup()
    yield binding
    binding.cleanup()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "10.1.2.3", "fe80::1:2"])
def test_sockaddr_round_trip(host: str) -> None:
    sa, size = libsrt.sockaddr(host, 8890)
    assert size == (16 if ":" not in host else 28)
    text = libsrt.peer_string(ctypes.addressof(sa))
    assert text == (f"{host}:8890" if ":" not in host else f"[{host}]:8890")
    assert libsrt.peer_string(None) is None


def test_version(lib: libsrt.LibSrt) -> None:
    assert lib.version.startswith("1.5.")


def _caller(lib: libsrt.LibSrt, port: int, streamid: bytes) -> tuple[bool, int]:
    """Connect a live-mode caller; (connected, rejection reason seen by the caller)."""
    sock = lib.create_socket()
    try:
        lib.set_int(sock, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
        lib.set_bytes(sock, libsrt.SRTO_STREAMID, streamid)
        try:
            lib.connect(sock, "127.0.0.1", port)
        except libsrt.SrtError:
            return False, lib.reject_reason(sock)
        return True, 0
    finally:
        lib.close(sock)


def test_listen_callback_accepts_rejects_with_reason_and_survives_exceptions(lib: libsrt.LibSrt) -> None:
    port = free_port(socket.SOCK_DGRAM)
    seen: list[tuple[bytes | None, str | None]] = []

    def decide(sock: int, hs_version: int, peer: str | None, streamid: bytes | None) -> int:
        seen.append((streamid, peer))
        if streamid == b"boom":
            raise RuntimeError("a bug in the application's check")
        if streamid != b"let-me-in":
            lib.set_reject_reason(sock, libsrt.REJX_UNAUTHORIZED)
            return -1
        return 0

    listener = lib.create_socket()
    accepted: list[int] = []
    try:
        lib.set_int(listener, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
        lib.bind(listener, "127.0.0.1", port)
        lib.set_listen_callback(listener, decide)
        lib.listen(listener, 4)

        def accept_one() -> None:
            sock, _ = lib.accept(listener)
            accepted.append(sock)
            lib.close(sock)

        acceptor = threading.Thread(target=accept_one, daemon=True)
        acceptor.start()
        assert _caller(lib, port, b"wrong") == (False, libsrt.REJX_UNAUTHORIZED)
        assert _caller(lib, port, b"boom") == (False, libsrt.REJX_ISE)  # the exception never reached C
        assert _caller(lib, port, b"let-me-in") == (True, 0)
        acceptor.join(5)
        assert len(accepted) == 1
        assert [s for s, _ in seen] == [b"wrong", b"boom", b"let-me-in"]
        assert all(p is not None and p.startswith("127.0.0.1:") for _, p in seen)
        lib.forget_listen_callback(listener)  # disarmed: later callers are refused, not called back
        assert _caller(lib, port, b"let-me-in") == (False, libsrt.REJX_OVERLOAD)
        assert len(seen) == 3
    finally:
        lib.close(listener)


@pytest.mark.anyio
async def test_transport_binds_port_zero_and_a_host_name(lib: libsrt.LibSrt, tmp_path: Path) -> None:
    from tests.ingest.srt_support import srt_env

    async with srt_env(tmp_path, port=0, host="localhost") as env:
        port = env.transport.port
        assert port != 0
        token = await env.token("publish")
        ok, reason = await asyncio.to_thread(_caller, lib, port, f"publish:{env.path}:trax:{token}".encode())
        assert (ok, reason) == (True, 0)
        ok, reason = await asyncio.to_thread(_caller, lib, port, f"publish:{env.path}:trax:x{token}".encode())
        assert (ok, reason) == (False, libsrt.REJX_UNAUTHORIZED)
