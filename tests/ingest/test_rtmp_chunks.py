from __future__ import annotations

import asyncio
import struct

import pytest

from trax.ingest.rtmp import messages as m
from trax.ingest.rtmp.chunks import ChunkError, ChunkLimits, ChunkReader, encode_message
from trax.ingest.rtmp.messages import Message


def header(
    fmt: int,
    csid: int,
    ts: int | None = None,
    length: int | None = None,
    type_id: int | None = None,
    sid: int | None = None,
) -> bytes:
    out = bytes([(fmt << 6) | csid]) if csid < 64 else bytes([fmt << 6, csid - 64])
    if fmt <= 2:
        assert ts is not None
        out += min(ts, 0xFFFFFF).to_bytes(3, "big")
    if fmt <= 1:
        assert length is not None and type_id is not None
        out += length.to_bytes(3, "big") + bytes([type_id])
    if fmt == 0:
        out += struct.pack("<I", sid or 0)
    if ts is not None and ts >= 0xFFFFFF:
        out += struct.pack(">I", ts)
    return out


def reader_for(data: bytes, **limits: int) -> ChunkReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    r.feed_eof()
    return ChunkReader(r, ChunkLimits(**limits) if limits else None)


@pytest.mark.anyio
async def test_all_header_types_and_timestamp_deltas() -> None:
    data = (
        header(0, 4, ts=1000, length=3, type_id=m.AUDIO, sid=1)
        + b"abc"
        + header(1, 4, ts=20, length=2, type_id=m.AUDIO)
        + b"de"  # delta, new length
        + header(2, 4, ts=30)
        + b"fg"  # delta only
        + header(3, 4)
        + b"hi"  # repeats the last delta
    )
    r = reader_for(data)
    got = [await r.read_message() for _ in range(4)]
    assert [(x.timestamp, x.payload, x.stream_id, x.type_id) for x in got] == [
        (1000, b"abc", 1, m.AUDIO),
        (1020, b"de", 1, m.AUDIO),
        (1050, b"fg", 1, m.AUDIO),
        (1080, b"hi", 1, m.AUDIO),
    ]


@pytest.mark.anyio
async def test_message_split_over_chunks_and_interleaved_streams() -> None:
    body = bytes(range(200))
    data = (
        header(0, 6, ts=5, length=200, type_id=m.VIDEO, sid=1)
        + body[:128]
        + header(0, 4, ts=7, length=2, type_id=m.AUDIO, sid=1)
        + b"au"  # another chunk stream in between
        + header(3, 6)
        + body[128:]
    )
    r = reader_for(data)
    first, second = await r.read_message(), await r.read_message()
    assert (first.type_id, first.payload) == (m.AUDIO, b"au")
    assert (second.type_id, second.timestamp, second.payload) == (m.VIDEO, 5, body)


@pytest.mark.anyio
async def test_extended_timestamp_including_type3_continuation() -> None:
    ts = 0x01234567
    body = bytes(300)
    data = header(0, 6, ts=ts, length=300, type_id=m.VIDEO, sid=1) + body[:128]
    data += header(3, 6) + struct.pack(">I", ts) + body[128:256]
    data += header(3, 6) + struct.pack(">I", ts) + body[256:]
    msg = await reader_for(data).read_message()
    assert (msg.timestamp, len(msg.payload)) == (ts, 300)


@pytest.mark.anyio
async def test_two_and_three_byte_chunk_stream_ids() -> None:
    data = bytes([0x00, 200 - 64]) + header(0, 4, ts=1, length=1, type_id=m.AUDIO)[1:] + b"x"
    data += bytes([0x01, (400 - 64) & 0xFF, (400 - 64) >> 8]) + header(0, 4, ts=2, length=1, type_id=m.AUDIO)[1:] + b"y"
    r = reader_for(data)
    assert (await r.read_message()).payload == b"x"
    assert (await r.read_message()).payload == b"y"


@pytest.mark.anyio
async def test_set_chunk_size_applies_to_following_chunks() -> None:
    body = bytes(range(256)) * 4
    data = header(0, 2, ts=0, length=4, type_id=m.SET_CHUNK_SIZE) + struct.pack(">I", 4096)
    data += header(0, 6, ts=0, length=len(body), type_id=m.VIDEO, sid=1) + body  # one chunk now
    r = reader_for(data)
    assert (await r.read_message()).type_id == m.SET_CHUNK_SIZE
    assert r.chunk_size == 4096
    assert (await r.read_message()).payload == body


@pytest.mark.anyio
async def test_abort_discards_the_partial_message() -> None:
    data = header(0, 6, ts=0, length=300, type_id=m.VIDEO, sid=1) + bytes(128)
    data += header(0, 2, ts=0, length=4, type_id=m.ABORT) + struct.pack(">I", 6)
    data += header(0, 6, ts=9, length=2, type_id=m.VIDEO, sid=1) + b"ok"
    r = reader_for(data)
    assert (await r.read_message()).type_id == m.ABORT
    msg = await r.read_message()
    assert (msg.timestamp, msg.payload) == (9, b"ok")


@pytest.mark.anyio
async def test_window_acknowledgement_falls_due() -> None:
    stream = asyncio.StreamReader()
    r = ChunkReader(stream)
    stream.feed_data(header(0, 2, ts=0, length=4, type_id=m.WINDOW_ACK_SIZE) + struct.pack(">I", 100))
    await r.read_message()
    assert r.ack_due() is None  # 16 bytes received so far
    stream.feed_data(header(0, 6, ts=0, length=120, type_id=m.VIDEO, sid=1) + bytes(120))
    await r.read_message()
    seq = r.ack_due()
    assert seq == r.bytes_read and seq > 100
    assert r.ack_due() is None


@pytest.mark.anyio
@pytest.mark.parametrize("size", [100 * 1024 * 1024, 0])
async def test_chunk_size_announcement_out_of_bounds(size: int) -> None:
    data = header(0, 2, ts=0, length=4, type_id=m.SET_CHUNK_SIZE) + struct.pack(">I", size)
    with pytest.raises(ChunkError, match="chunk size"):
        await reader_for(data).read_message()


@pytest.mark.anyio
async def test_oversized_message_is_refused_before_reading_it() -> None:
    data = header(0, 6, ts=0, length=0xFFFFFF, type_id=m.VIDEO, sid=1)
    with pytest.raises(ChunkError, match="exceeds"):
        await reader_for(data, max_message_size=1024 * 1024).read_message()


@pytest.mark.anyio
async def test_too_many_chunk_streams() -> None:
    data = b"".join(header(0, 3 + i, ts=0, length=200, type_id=m.VIDEO, sid=1) + bytes(128) for i in range(10))
    with pytest.raises(ChunkError, match="too many chunk streams"):
        await reader_for(data, max_chunk_streams=5).read_message()


@pytest.mark.anyio
async def test_pending_partial_bytes_are_bounded() -> None:
    data = b"".join(header(0, 3 + i, ts=0, length=1000, type_id=m.VIDEO, sid=1) + bytes(128) for i in range(10))
    with pytest.raises(ChunkError, match="pending"):
        await reader_for(data, max_pending_bytes=500).read_message()


@pytest.mark.anyio
async def test_relative_header_before_any_full_header() -> None:
    with pytest.raises(ChunkError, match="before any full header"):
        await reader_for(header(3, 6) + b"x").read_message()


@pytest.mark.anyio
@pytest.mark.parametrize("ts", [0, 40, 0xFFFFFF, 0x7FFFFFFF])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 129, 5000])
async def test_encode_then_read_round_trip(ts: int, size: int) -> None:
    msg = Message(m.VIDEO, 1, ts, bytes(i % 251 for i in range(size)))
    chunk_size = 128
    data = encode_message(msg, 70, chunk_size)
    got = await reader_for(data).read_message()
    assert got == msg


@pytest.mark.anyio
async def test_chunks_split_at_every_byte_boundary() -> None:
    msgs = [Message(m.VIDEO, 1, 0x1000000 + i, bytes(range(i * 37 % 251)) * 3) for i in range(6)]
    data = b"".join(encode_message(x, 6, 128) for x in msgs)
    stream = asyncio.StreamReader()
    r = ChunkReader(stream)

    async def feed() -> None:
        for i in range(len(data)):
            stream.feed_data(data[i : i + 1])
            await asyncio.sleep(0)
        stream.feed_eof()

    feeder = asyncio.create_task(feed())
    got = [await r.read_message() for _ in msgs]
    await feeder
    assert got == msgs
    with pytest.raises(asyncio.IncompleteReadError):
        await r.read_message()
