"""AMF0, the value encoding of RTMP commands and metadata (Adobe AMF0 spec, types 0x00-0x0C).

Decoding is bounded: nesting depth, element counts and string sizes are capped so a
hostile command cannot exhaust memory or recursion. Values map to Python as:
number → float, boolean → bool, string → str, object/ECMA array → dict, null/undefined → None,
strict array → list, date → float (ms since epoch).
"""

from __future__ import annotations

import struct
from typing import Any

NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
REFERENCE, ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C

MAX_DEPTH = 16
MAX_ELEMENTS = 4096

_F64 = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class AmfError(ValueError):
    """Malformed or over-limit AMF0 data."""


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.buf):
            raise AmfError("truncated AMF0 value")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def u8(self) -> int:
        if self.pos >= len(self.buf):
            raise AmfError("truncated AMF0 value")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def utf8(self, n: int) -> str:
        return self.take(n).decode("utf-8", errors="replace")


def _read_props(r: _Reader, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    while True:
        key = r.utf8(r.u16())
        if key == "" and r.pos < len(r.buf) and r.buf[r.pos] == OBJECT_END:
            r.pos += 1
            return out
        if len(out) >= MAX_ELEMENTS:
            raise AmfError("too many AMF0 object properties")
        out[key] = _read_value(r, depth + 1)


def _read_value(r: _Reader, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise AmfError("AMF0 nesting too deep")
    marker = r.u8()
    if marker == NUMBER:
        return _F64.unpack(r.take(8))[0]
    if marker == BOOLEAN:
        return r.u8() != 0
    if marker == STRING:
        return r.utf8(r.u16())
    if marker == LONG_STRING:
        return r.utf8(r.u32())
    if marker == OBJECT:
        return _read_props(r, depth)
    if marker == ECMA_ARRAY:
        r.u32()  # the count is advisory; the end marker terminates the array
        return _read_props(r, depth)
    if marker == STRICT_ARRAY:
        count = r.u32()
        if count > MAX_ELEMENTS:
            raise AmfError("AMF0 strict array too long")
        return [_read_value(r, depth + 1) for _ in range(count)]
    if marker in (NULL, UNDEFINED):
        return None
    if marker == DATE:
        ms = _F64.unpack(r.take(8))[0]
        r.take(2)  # time zone, unused by every encoder
        return ms
    if marker == REFERENCE:
        r.u16()
        return None
    raise AmfError(f"unsupported AMF0 marker 0x{marker:02x}")


def decode_all(data: bytes | bytearray) -> list[Any]:
    """Every value in ``data`` (a command message body)."""
    r = _Reader(bytes(data))
    values: list[Any] = []
    while r.pos < len(r.buf):
        if len(values) >= MAX_ELEMENTS:
            raise AmfError("too many AMF0 values")
        values.append(_read_value(r, 0))
    return values


def _encode_str_body(s: str, out: bytearray) -> None:
    raw = s.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise AmfError("AMF0 key too long")
    out += _U16.pack(len(raw))
    out += raw


def _encode(value: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise AmfError("AMF0 nesting too deep")
    if value is None:
        out.append(NULL)
    elif isinstance(value, bool):
        out.append(BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _F64.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += _U16.pack(len(raw))
        else:
            out.append(LONG_STRING)
            out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, EcmaArray):
        out.append(ECMA_ARRAY)
        out += _U32.pack(len(value))
        _encode_props(value, out, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _encode_props(value, out, depth)
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode(item, out, depth + 1)
    else:
        raise AmfError(f"cannot encode {type(value).__name__} as AMF0")


def _encode_props(props: dict[str, Any], out: bytearray, depth: int) -> None:
    for key, item in props.items():
        _encode_str_body(str(key), out)
        _encode(item, out, depth + 1)
    out += b"\x00\x00" + bytes([OBJECT_END])


class EcmaArray(dict[str, Any]):
    """A dict encoded as an ECMA array (what ``onMetaData`` uses) instead of an object."""


def encode(*values: Any) -> bytes:
    out = bytearray()
    for value in values:
        _encode(value, out, 0)
    return bytes(out)
