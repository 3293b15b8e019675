from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trax.ingest.rtmp import amf0

values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=5),
    max_leaves=20,
)


@given(values)
def test_round_trip(value: object) -> None:
    assert amf0.decode_all(amf0.encode(value)) == [value]


def test_connect_command_as_ffmpeg_sends_it() -> None:
    body = amf0.encode("connect", 1, {"app": "inputs", "type": "nonprivate", "tcUrl": "rtmp://h/inputs"})
    assert body[0] == amf0.STRING
    assert amf0.decode_all(body) == [
        "connect",
        1.0,
        {"app": "inputs", "type": "nonprivate", "tcUrl": "rtmp://h/inputs"},
    ]


def test_ecma_array_and_long_string() -> None:
    long = "x" * 70000
    data = amf0.encode(amf0.EcmaArray(width=320.0), long)
    assert data[0] == amf0.ECMA_ARRAY
    assert amf0.decode_all(data) == [{"width": 320.0}, long]


def test_date_and_undefined_decode() -> None:
    data = bytes([amf0.DATE]) + struct.pack(">d", 1000.0) + b"\x00\x00" + bytes([amf0.UNDEFINED])
    assert amf0.decode_all(data) == [1000.0, None]


@pytest.mark.parametrize(
    "data",
    [
        b"\x02\x00\x05ab",  # string shorter than its length
        b"\x00\x01",  # truncated number
        b"\x0d",  # unsupported marker (unsupported/recordset)
        b"\x0a\xff\xff\xff\xff",  # strict array claiming 4 G elements
        b"\x03\x00\x01a",  # object property without a value
    ],
)
def test_malformed_is_refused(data: bytes) -> None:
    with pytest.raises(amf0.AmfError):
        amf0.decode_all(data)


def test_nesting_is_bounded() -> None:
    deep = b"\x0a\x00\x00\x00\x01" * 100 + b"\x05"
    with pytest.raises(amf0.AmfError, match="deep"):
        amf0.decode_all(deep)
    shallow = b"\x0a\x00\x00\x00\x01" * 5 + b"\x05"
    assert amf0.decode_all(shallow) == [[[[[[None]]]]]]
