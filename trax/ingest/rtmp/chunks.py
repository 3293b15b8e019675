"""The RTMP chunk stream: reassembling messages from chunks (fmt 0-3) and splitting them back.

Limits are enforced while reading, before any allocation they would allow: the largest
message, the largest chunk size a peer may announce, how many chunk streams it may use
and how many bytes of partial messages it may leave pending at once.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

from trax.ingest.rtmp import messages as m
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


class ChunkReader:
    """Reads complete messages; handles set-chunk-size, abort and window acknowledgements itself."""

    def __init__(self, reader: asyncio.StreamReader, limits: ChunkLimits | None = None) -> None:
        self._r = reader
        self.limits = limits or ChunkLimits()
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._streams: dict[int, _ChunkStream] = {}
        self._pending = 0
        self.bytes_read = 0
        self.window_ack_size = 0  # set by the peer's Window Acknowledgement Size
        self._last_ack = 0

    async def _read(self, n: int) -> bytes:
        data = await self._r.readexactly(n)
        self.bytes_read += n
        return data

    def ack_due(self) -> int | None:
        """The sequence number to acknowledge, when the peer's window has been filled since the last ack."""
        if self.window_ack_size and self.bytes_read - self._last_ack >= self.window_ack_size:
            self._last_ack = self.bytes_read
            return self.bytes_read & 0xFFFFFFFF
        return None

    async def read_message(self) -> Message:
        """The next complete message (protocol control types 1, 2 and 5 are applied, then returned too)."""
        while True:
            msg = await self._read_chunk()
            if msg is None:
                continue
            self._apply_control(msg)
            return msg

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

    async def _read_chunk(self) -> Message | None:
        b0 = (await self._read(1))[0]
        fmt = b0 >> 6
        csid = b0 & 0x3F
        if csid == 0:
            csid = 64 + (await self._read(1))[0]
        elif csid == 1:
            b = await self._read(2)
            csid = 64 + b[0] + 256 * b[1]
        cs = self._streams.get(csid)
        if cs is None:
            if len(self._streams) >= self.limits.max_chunk_streams:
                raise ChunkError("too many chunk streams")
            cs = self._streams[csid] = _ChunkStream()
        if fmt != 0 and not cs.started:
            raise ChunkError(f"chunk type {fmt} on chunk stream {csid} before any full header")
        new_message = not cs.buffer
        if fmt == 0:
            h = await self._read(11)
            ts = int.from_bytes(h[0:3], "big")
            cs.length = int.from_bytes(h[3:6], "big")
            cs.type_id = h[6]
            cs.stream_id = _U32LE.unpack_from(h, 7)[0]
        elif fmt == 1:
            h = await self._read(7)
            ts = int.from_bytes(h[0:3], "big")
            cs.length = int.from_bytes(h[3:6], "big")
            cs.type_id = h[6]
        elif fmt == 2:
            ts = int.from_bytes(await self._read(3), "big")
        else:
            ts = cs.ts_field if not cs.extended else MAX_TIMESTAMP_FIELD
        if fmt != 3:
            cs.extended = ts == MAX_TIMESTAMP_FIELD
        if cs.extended:
            # fmt 3 chunks repeat the extended field when their stream's header used one (FFmpeg, librtmp).
            ts = _U32.unpack(await self._read(4))[0]
        if fmt != 3 and not new_message:
            raise ChunkError(f"new header on chunk stream {csid} in the middle of a message")
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
        if cs.length > self.limits.max_message_size:
            raise ChunkError(f"message of {cs.length} bytes exceeds {self.limits.max_message_size}")
        want = min(self.chunk_size, cs.length - len(cs.buffer))
        if self._pending + want > self.limits.max_pending_bytes:
            raise ChunkError("too many bytes pending in partial messages")
        if want:
            cs.buffer += await self._read(want)
            self._pending += want
        if len(cs.buffer) < cs.length:
            return None
        payload = bytes(cs.buffer)
        self._pending -= len(cs.buffer)
        cs.buffer = bytearray()
        return Message(cs.type_id, cs.stream_id, cs.timestamp, payload)


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
    ts = msg.timestamp & 0xFFFFFFFF
    extended = ts >= MAX_TIMESTAMP_FIELD
    ts_field = MAX_TIMESTAMP_FIELD if extended else ts
    ext = _U32.pack(ts) if extended else b""
    payload = msg.payload
    out = bytearray(_basic_header(0, csid))
    out += ts_field.to_bytes(3, "big") + len(payload).to_bytes(3, "big") + bytes([msg.type_id])
    out += _U32LE.pack(msg.stream_id) + ext
    out += payload[:chunk_size]
    cont = _basic_header(3, csid) + ext
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
