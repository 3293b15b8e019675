from __future__ import annotations

import asyncio
import os

import pytest

from trax.ingest.rtmp import handshake
from trax.ingest.rtmp.handshake import HANDSHAKE_SIZE, HandshakeError


class _Sink:
    """A StreamWriter stand-in that records what the server wrote."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None


def test_server_hello_echoes_c1() -> None:
    c1 = os.urandom(HANDSHAKE_SIZE)
    out = handshake.server_hello(c1, epoch_ms=1234)
    assert out[0] == 3
    assert len(out) == 1 + 2 * HANDSHAKE_SIZE
    assert out[1:5] == (1234).to_bytes(4, "big") and out[5:9] == b"\x00" * 4  # plain handshake: no server version
    assert out[1 + HANDSHAKE_SIZE :] == c1


@pytest.mark.anyio
async def test_accept_completes() -> None:
    reader = asyncio.StreamReader()
    c1 = os.urandom(HANDSHAKE_SIZE)
    reader.feed_data(b"\x03" + c1 + os.urandom(HANDSHAKE_SIZE))
    sink = _Sink()
    await handshake.accept(reader, sink, within=5)  # type: ignore[arg-type]
    assert bytes(sink.data[1 + HANDSHAKE_SIZE :]) == c1


@pytest.mark.anyio
async def test_wrong_version_is_refused() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"\x06" + bytes(HANDSHAKE_SIZE))
    with pytest.raises(HandshakeError, match="version"):
        await handshake.accept(reader, _Sink(), within=5)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_stalled_handshake_times_out() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"\x03" + bytes(100))  # C1 never completes
    with pytest.raises(HandshakeError, match="timed out"):
        await handshake.accept(reader, _Sink(), within=0.2)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_truncated_handshake_is_refused() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"\x03" + bytes(HANDSHAKE_SIZE) + bytes(10))
    reader.feed_eof()
    with pytest.raises(HandshakeError, match="closed"):
        await handshake.accept(reader, _Sink(), within=5)  # type: ignore[arg-type]
