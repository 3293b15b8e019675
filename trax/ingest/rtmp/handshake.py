"""The RTMP handshake, server side: C0+C1 → S0+S1+S2 → C2.

We answer with the plain handshake (S1 carries zeros where the "complex" variant puts a
version and digest, and S2 echoes C1). Encoders accept it, and players only check the
server digest when S1 announces a server version, which this S1 does not.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time

HANDSHAKE_SIZE = 1536
RTMP_VERSION = 3


class HandshakeError(ConnectionError):
    """The peer is not speaking RTMP, or stalled during the handshake."""


def server_hello(c1: bytes, *, epoch_ms: int | None = None) -> bytes:
    """S0 + S1 + S2 for a client's C1."""
    if len(c1) != HANDSHAKE_SIZE:
        raise HandshakeError("C1 must be 1536 bytes")
    now = int(time.monotonic() * 1000) if epoch_ms is None else epoch_ms
    s1 = struct.pack(">II", now & 0xFFFFFFFF, 0) + os.urandom(HANDSHAKE_SIZE - 8)
    return bytes([RTMP_VERSION]) + s1 + c1


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, within: float) -> None:
    """Run the server half of the handshake within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            c0 = await reader.readexactly(1)
            # 3 is plain RTMP; 6 is RTMPE, which we do not speak, so refuse anything but 3.
            if c0[0] != RTMP_VERSION:
                raise HandshakeError(f"unsupported RTMP version {c0[0]}")
            c1 = await reader.readexactly(HANDSHAKE_SIZE)
            writer.write(server_hello(c1))
            await writer.drain()
            await reader.readexactly(HANDSHAKE_SIZE)  # C2: its content is not checked by any server in practice
    except TimeoutError:
        raise HandshakeError("handshake timed out") from None
    except asyncio.IncompleteReadError:
        raise HandshakeError("connection closed during handshake") from None
