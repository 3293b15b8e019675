"""The attacker's packets are what the soak test says they are, read back by the server's own parsers.

Without this, a malformed attack packet would be refused at once and the soak would measure nothing.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from tests.hardening import attacker
from trax.ingest.rtmp import amf0
from trax.ingest.rtmp.chunks import ChunkError, ChunkLimits, ChunkReader
from trax.ingest.whip.sessions import _offer_kinds, _offered_codecs


async def messages(data: bytes, limits: ChunkLimits | None = None) -> list[tuple[int, bytes]]:
    """Every complete RTMP message in ``data`` as (type id, payload); stops at the end of the bytes."""
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    chunks = ChunkReader(reader, limits)
    out: list[tuple[int, bytes]] = []
    try:
        while True:
            msg = await chunks.read_message()
            out.append((msg.type_id, bytes(msg.payload)))
    except (asyncio.IncompleteReadError, EOFError):
        return out


@pytest.mark.anyio
async def test_rtmp_connect_then_a_message_that_never_completes() -> None:
    args = attacker.parse(["--duration", "1", "--rtmp-port", "1935"])
    connect = attacker.amf0("connect", 1, {"app": "inputs", "tcUrl": f"rtmp://127.0.0.1:{args.rtmp_port}/inputs"})
    held = attacker.rtmp_chunks(3, 20, b"", length=args.rtmp_held_size) + b"\x00" * 128 + attacker.rtmp_ping()
    got = await messages(attacker.rtmp_chunks(3, 20, connect) + held)
    # the connect is complete and decodes; the ping between chunks of the big message is answered;
    # the big message is still pending
    assert got[0][0] == 20 and amf0.decode_all(got[0][1])[:2] == ["connect", 1.0]
    assert [t for t, _ in got[1:]] == [4]
    assert args.rtmp_held_size < ChunkLimits().max_message_size  # held: under the server's default cap


@pytest.mark.anyio
async def test_rtmp_over_cap_announcement_is_refused_from_the_header() -> None:
    with pytest.raises(ChunkError, match="exceeds"):
        await messages(attacker.rtmp_chunks(3, 20, b"", length=attacker.RTMP_MAX_LENGTH))
    with pytest.raises(ValueError, match="cannot announce"):  # 24 bits: 16 MiB would wrap to 0
        attacker.rtmp_chunks(3, 20, b"", length=16 * attacker.MiB)


def test_srt_conclusion_carries_the_streamid_as_libsrt_words() -> None:
    sid = b"publish:inputs/x:trax:abcde"
    ext = attacker.srt_extensions(sid)
    kind, words = struct.unpack(">HH", ext[16:20])  # after the 16-byte HSREQ extension
    assert kind == 5 and words == 7
    body = ext[20:]
    restored = b"".join(body[i : i + 4][::-1] for i in range(0, len(body), 4)).rstrip(b"\x00")
    assert restored == sid
    packet = attacker.srt_handshake(attacker.HS_CONCLUSION, version=5, ext=5, cookie=7, socket_id=9, extensions=ext)
    assert struct.unpack(">I", packet[16 + 20 : 16 + 24])[0] == attacker.HS_CONCLUSION
    assert struct.unpack(">I", packet[16 + 28 : 16 + 32])[0] == 7  # the cookie where the listener reads it


def test_whep_offer_passes_the_servers_checks() -> None:
    offer = attacker.whep_offer()
    assert _offer_kinds(offer) == {"video", "audio"}
    assert {"h264", "opus"} <= _offered_codecs(offer)
    assert attacker.whep_offer() != offer  # fresh ICE credentials and fingerprint each time


def test_tampered_token_keeps_its_shape() -> None:
    token = "aGVhZA.Ym9keQ.c2lnbmF0dXJl"
    bad = attacker.tampered(token)
    assert bad != token and bad.split(".")[:2] == token.split(".")[:2] and len(bad) == len(token)
