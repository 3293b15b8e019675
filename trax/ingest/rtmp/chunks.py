"""The RTMP chunk stream: reassembling messages from chunks (fmt 0-3) and splitting them back.

Limits are enforced while reading, before any allocation they would allow: the largest
message, the largest chunk size a peer may announce, how many chunk streams it may use
and how many bytes of partial messages it may leave pending at once. A listener-wide
``ByteBudget`` bounds what all connections hold together; it is charged at each read.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

from trax.ingest.rtmp import messages as m
from trax.ingest.rtmp.budget import ByteBudget
from trax.ingest.rtmp.messages import Message

DEFAULT_CHUNK_SIZE = 128
MAX_TIMESTAMP_FIELD = 0xFFFFFF

_U32 = struct.Struct(">I")
_U32LE = struct.Struct("<I")


class ChunkError(ConnectionError):
    """The peer broke the chunk-stream rules or a limit; its connection ends."""


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    max_message_size: int = 8 * 1024 * 1024
    max_chunk_size: int = 1024 * 1024
    max_chunk_streams: int = 64
    max_pending_bytes: int = 16 * 1024 * 1024


@dataclass(slots=True)
class _ChunkStream:
    timestamp: int = 0
    ts_field: int = 0  # last timestamp field read (absolute for fmt 0, delta otherwise)
    extended: bool = False
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    buffer: bytearray = field(default_factory=bytearray)
    started: bool = False  # a header has been seen, so fmt 1-3 have something to inherit


class _Need:
    """More bytes are needed before the next chunk can be parsed."""


_NEED = _Need()
READ_SIZE = 256 * 1024


class ChunkReader:
    """Reads complete messages; handles set-chunk-size, abort and window acknowledgements itself.

    Chunks are parsed synchronously out of one receive buffer (filled with large reads), so a
    20 Mbps feed costs a few hundred awaits per second rather than several per chunk.
    """

    def __init__(
        self, reader: asyncio.StreamReader, limits: ChunkLimits | None = None, budget: ByteBudget | None = None
    ) -> None:
        self._r = reader
        self.limits = limits or ChunkLimits()
        """Replaced by the session once the client is authorised (larger messages from then on)."""
        self._budget = budget
        self._charged = 0  # what this connection holds against the budget
        self.read_size = READ_SIZE
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._streams: dict[int, _ChunkStream] = {}
        self._pending = 0
        self._buf = bytearray()
        self._pos = 0
        self.bytes_read = 0
        self.window_ack_size = 0  # set by the peer's Window Acknowledgement Size
        self._last_ack = 0
        self.read_timeout: float | None = None
        """Seconds to wait for more bytes from the peer (``TimeoutError`` after); ``None`` waits forever."""

    def ack_due(self) -> int | None:
        """The sequence number to acknowledge, when the peer's window has been filled since the last ack."""
        if self.window_ack_size and self.bytes_read - self._last_ack >= self.window_ack_size:
            self._last_ack = self.bytes_read
            return self.bytes_read & 0xFFFFFFFF
        return None

    async def read_message(self) -> Message:
        """The next complete message (protocol control types 1, 2 and 5 are applied, then returned too)."""
        while True:
            msg = self._parse()
            if msg is _NEED:
                await self._fill()
            elif msg is not None:
                assert isinstance(msg, Message)
                self._apply_control(msg)
                return msg

    async def _fill(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        # held while waiting: the unparsed tail of the buffer plus partial messages
        self._charge(len(self._buf) + self._pending)
        async with asyncio.timeout(self.read_timeout):
            data = await self._r.read(self.read_size)
        if not data:
            raise asyncio.IncompleteReadError(b"", None)
        self.bytes_read += len(data)
        self._buf += data
        self._charge(len(self._buf) + self._pending)

    def _charge(self, held: int) -> None:
        budget = self._budget
        if budget is None:
            return
        delta = held - self._charged
        if delta > 0 and not budget.take(delta):
            raise ChunkError("the listener holds too many bytes of incomplete messages")
        if delta < 0:
            budget.give(-delta)
        self._charged = held

    def release(self) -> None:
        """Drop every buffer and return this connection's share of the budget (the connection is over)."""
        self._buf = bytearray()
        self._pos = 0
        self._streams.clear()
        self._pending = 0
        if self._budget is not None:
            self._budget.give(self._charged)
        self._charged = 0

    def _apply_control(self, msg: Message) -> None:
        if msg.stream_id != 0 and msg.type_id in (m.SET_CHUNK_SIZE, m.ABORT, m.WINDOW_ACK_SIZE):
            return
        if msg.type_id == m.SET_CHUNK_SIZE:
            size = _first_u32(msg) & 0x7FFFFFFF
            if size < 1 or size > self.limits.max_chunk_size:
                raise ChunkError(f"chunk size {size} outside 1..{self.limits.max_chunk_size}")
            self.chunk_size = size
        elif msg.type_id == m.ABORT:
            cs = self._streams.get(_first_u32(msg))
            if cs is not None:
                self._pending -= len(cs.buffer)
                cs.buffer = bytearray()
        elif msg.type_id == m.WINDOW_ACK_SIZE:
            self.window_ack_size = _first_u32(msg)

    def _parse(self) -> Message | _Need | None:
        """One chunk from the buffer: a completed message, ``None`` (chunk consumed) or ``_NEED``.

        Nothing is changed until the whole chunk is in the buffer, so a short buffer is retried as is.
        """
        buf, p, end = self._buf, self._pos, len(self._buf)
        if p >= end:
            return _NEED
        b0 = buf[p]
        p += 1
        fmt, csid = b0 >> 6, b0 & 0x3F
        if csid == 0:
            if p + 1 > end:
                return _NEED
            csid = 64 + buf[p]
            p += 1
        elif csid == 1:
            if p + 2 > end:
                return _NEED
            csid = 64 + buf[p] + 256 * buf[p + 1]
            p += 2
        cs = self._streams.get(csid)
        if cs is None:
            if len(self._streams) >= self.limits.max_chunk_streams:
                raise ChunkError("too many chunk streams")
            cs = self._streams[csid] = _ChunkStream()
        if fmt != 0 and not cs.started:
            raise ChunkError(f"chunk type {fmt} on chunk stream {csid} before any full header")
        new_message = not cs.buffer
        if fmt != 3 and not new_message:
            raise ChunkError(f"new header on chunk stream {csid} in the middle of a message")
        length, type_id, stream_id = cs.length, cs.type_id, cs.stream_id
        if fmt == 0:
            if p + 11 > end:
                return _NEED
            ts = int.from_bytes(buf[p : p + 3], "big")
            length = int.from_bytes(buf[p + 3 : p + 6], "big")
            type_id = buf[p + 6]
            stream_id = _U32LE.unpack_from(buf, p + 7)[0]
            p += 11
        elif fmt == 1:
            if p + 7 > end:
                return _NEED
            ts = int.from_bytes(buf[p : p + 3], "big")
            length = int.from_bytes(buf[p + 3 : p + 6], "big")
            type_id = buf[p + 6]
            p += 7
        elif fmt == 2:
            if p + 3 > end:
                return _NEED
            ts = int.from_bytes(buf[p : p + 3], "big")
            p += 3
        else:
            ts = cs.ts_field
        extended = ts == MAX_TIMESTAMP_FIELD if fmt != 3 else cs.extended
        if extended:
            # fmt 3 chunks repeat the extended field when their stream's header used one (FFmpeg, librtmp).
            if p + 4 > end:
                return _NEED
            ts = _U32.unpack_from(buf, p)[0]
            p += 4
        if length > self.limits.max_message_size:
            raise ChunkError(f"message of {length} bytes exceeds {self.limits.max_message_size}")
        want = min(self.chunk_size, length - len(cs.buffer))
        if self._pending + want > self.limits.max_pending_bytes:
            raise ChunkError("too many bytes pending in partial messages")
        if p + want > end:
            return _NEED
        # the whole chunk is here: commit
        cs.length, cs.type_id, cs.stream_id = length, type_id, stream_id
        if fmt != 3:
            cs.extended = extended
        if fmt == 0:
            cs.ts_field = ts
            cs.timestamp = ts
        elif fmt in (1, 2):
            cs.ts_field = ts
            cs.timestamp = (cs.timestamp + ts) & 0xFFFFFFFF
        elif new_message:
            # fmt 3 starting a message repeats the previous field as a delta, as FFmpeg reads it.
            cs.timestamp = (cs.timestamp + ts) & 0xFFFFFFFF
        cs.started = True
        self._pos = p + want
        if want == length:  # the common case: a message in one chunk, no reassembly copy
            return Message(type_id, stream_id, cs.timestamp, bytes(buf[p : p + want]))
        cs.buffer += buf[p : p + want]
        self._pending += want
        if len(cs.buffer) < length and csid < 64 and not cs.extended:
            self._continuations(cs, csid, end)
        if len(cs.buffer) < length:
            return None
        payload = cs.buffer  # handed over, not copied: the stream starts a fresh buffer
        self._pending -= len(payload)
        cs.buffer = bytearray()
        return Message(type_id, stream_id, cs.timestamp, payload)

    def _continuations(self, cs: _ChunkStream, csid: int, end: int) -> None:
        """Consume the plain type-3 continuations of ``cs``'s message already buffered (the hot path).

        Same rules as ``_parse``; it only skips the general header decoding for the common case.
        """
        buf, marker, length = self._buf, 0xC0 | csid, cs.length
        with memoryview(buf) as view:
            q = self._pos
            while q < end and buf[q] == marker:
                want = min(self.chunk_size, length - len(cs.buffer))
                if q + 1 + want > end:
                    break
                if self._pending + want > self.limits.max_pending_bytes:
                    raise ChunkError("too many bytes pending in partial messages")
                cs.buffer += view[q + 1 : q + 1 + want]
                self._pending += want
                q += 1 + want
                if len(cs.buffer) >= length:
                    break
            self._pos = q


def _first_u32(msg: Message) -> int:
    if len(msg.payload) < 4:
        raise ChunkError(f"control message type {msg.type_id} too short")
    return int(_U32.unpack_from(msg.payload)[0])


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([(fmt << 6) | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    rest = csid - 64
    return bytes([(fmt << 6) | 1, rest & 0xFF, rest >> 8])


def encode_message(msg: Message, csid: int, chunk_size: int) -> bytes:
    """``msg`` as a type-0 chunk followed by type-3 continuations of at most ``chunk_size`` bytes."""
    return message_header(msg.type_id, msg.stream_id, msg.timestamp, len(msg.payload), csid) + chunked_payload(
        msg.payload, csid, chunk_size, msg.timestamp
    )


def message_header(type_id: int, stream_id: int, timestamp: int, length: int, csid: int) -> bytes:
    """The type-0 chunk header that starts a message (with its extended timestamp when the field overflows)."""
    ts = timestamp & 0xFFFFFFFF
    extended = ts >= MAX_TIMESTAMP_FIELD
    return b"".join(
        (
            _basic_header(0, csid),
            (MAX_TIMESTAMP_FIELD if extended else ts).to_bytes(3, "big"),
            length.to_bytes(3, "big"),
            bytes([type_id]),
            _U32LE.pack(stream_id),
            _U32.pack(ts) if extended else b"",
        )
    )


def chunked_payload(payload: bytes | bytearray, csid: int, chunk_size: int, timestamp: int = 0) -> bytes:
    """``payload`` cut into ``chunk_size`` pieces joined by type-3 headers: a message after its type-0 header.

    Only the extended timestamp (repeated in every continuation) ties these bytes to a timestamp, so below
    :data:`MAX_TIMESTAMP_FIELD` they are the same for every connection that sends ``payload`` on ``csid``.
    """
    ts = timestamp & 0xFFFFFFFF
    if len(payload) <= chunk_size:
        return bytes(payload)
    cont = _basic_header(3, csid) + (_U32.pack(ts) if ts >= MAX_TIMESTAMP_FIELD else b"")
    out = bytearray(payload[:chunk_size])
    for pos in range(chunk_size, len(payload), chunk_size):
        out += cont
        out += payload[pos : pos + chunk_size]
    return bytes(out)


class ChunkWriter:
    """Serialises messages onto a stream writer with our outgoing chunk size."""

    def __init__(self, writer: asyncio.StreamWriter, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._w = writer
        self.chunk_size = chunk_size

    def send(self, msg: Message, csid: int) -> None:
        self._w.write(encode_message(msg, csid, self.chunk_size))

    def set_chunk_size(self, size: int) -> None:
        self.send(m.set_chunk_size(size), m.CSID_CONTROL)
        self.chunk_size = size

    async def drain(self) -> None:
        await self._w.drain()

    def buffered(self) -> int:
        transport = self._w.transport
        return int(transport.get_write_buffer_size()) if transport is not None else 0
