"""The ctypes binding against the real libsrt: addresses, the listen callback, rejection reasons on the caller."""

from __future__ import annotations

import asyncio
import ctypes
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tools import require
from trax.ingest.srt import libsrt
from trax.ports import free_port


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


@pytest.mark.anyio
async def test_a_trusted_issuers_new_key_is_fetched_for_the_retry(lib: libsrt.LibSrt, tmp_path: Path) -> None:
    """The handshake cannot wait for HTTP: the first caller is refused, the key is fetched, the retry passes."""
    import json
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from typing import Any

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.ingest.srt_support import srt_env
    from trax.domain.errors import Unauthorized
    from trax.ingest.tokens import public_jwk

    key = ec.generate_private_key(ec.SECP256R1())
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = json.dumps({"keys": [public_jwk(key.public_key(), "k1")]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    tokens = {"leeway_seconds": 0, "trusted": [{"issuer": "studio", "jwks_url": url}]}
    try:
        async with srt_env(tmp_path, other_transports={"tokens": tokens}) as env:
            now = int(time.time())
            claims = {"iss": "studio", "aud": "trax-ingest", "action": "publish", "path": env.path}
            token = jwt.encode({**claims, "iat": now, "exp": now + 60}, key, "ES256", headers={"kid": "k1"})
            streamid = f"publish:{env.path}:trax:{token}".encode()
            first = await asyncio.to_thread(_caller, lib, env.port, streamid)
            assert first == (False, libsrt.REJX_UNAUTHORIZED)
            for _ in range(200):
                if hits:
                    break
                await asyncio.sleep(0.05)
            assert hits == ["/jwks.json"]
            for _ in range(200):  # the fetch answered; wait until its keys are in place
                try:
                    env.runtime.media_tokens.verify_cached(token, path=env.path, action="publish", audiences=["ingest"])
                    break
                except Unauthorized:
                    await asyncio.sleep(0.05)
            assert await asyncio.to_thread(_caller, lib, env.port, streamid) == (True, 0)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.anyio
async def test_a_refusal_flood_is_logged_at_a_bounded_rate(
    lib: libsrt.LibSrt, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from tests.ingest.srt_support import srt_env
    from trax.ingest.srt import listener

    caplog.set_level(logging.WARNING, logger="trax.ingest.srt.listener")
    async with srt_env(tmp_path) as env:
        streamid = f"publish:{env.path}:trax:not-a-token".encode()

        def flood() -> list[tuple[bool, int]]:
            return [_caller(lib, env.port, streamid) for _ in range(60)]

        results = await asyncio.to_thread(flood)
        assert results == [(False, libsrt.REJX_UNAUTHORIZED)] * 60  # every caller is still refused
        assert env.transport.refused[libsrt.REJX_UNAUTHORIZED] == 60
        await asyncio.sleep(0)  # let the loop write what was scheduled
        lines = [r for r in caplog.records if "refused (1401)" in r.getMessage()]
        seconds = {int(r.created) for r in lines}
        # at most the cap per second of the flood (a loaded machine may spread it over a few seconds)
        assert len(lines) <= listener._REFUSAL_LOGS_PER_SECOND * (len(seconds) + 1) < 60
