"""The SRT streamid grammar (ingest.md, SRT): three forms, raw bytes, 512-byte cap, no percent-encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trax.ingest.srt import libsrt
from trax.ingest.srt.streamid import MAX_STREAMID_BYTES, StreamId, StreamIdError, parse_streamid

PATH = "inputs/srt-3f0c2a52-8d7e-4a43-9a51-0e2b6f1d9c11"
JWT = "eyJhbGciOiJFUzI1NiJ9.eyJwYXRoIjoieCJ9.c2lnbmF0dXJl"


def test_trax_token_form() -> None:
    sid = parse_streamid(f"publish:{PATH}:trax:{JWT}".encode())
    assert sid == StreamId(action="publish", path=PATH, token=JWT)
    assert parse_streamid(f"read:{PATH}:trax:{JWT}".encode()).action == "read"


def test_stream_key_form_needs_the_key_twice() -> None:
    sid = parse_streamid(f"publish:{PATH}:live_abc:live_abc".encode())
    assert sid.stream_key == "live_abc" and sid.token is None and sid.credential_kind == "stream_key"
    with pytest.raises(StreamIdError) as err:
        parse_streamid(f"publish:{PATH}:live_abc:live_xyz".encode())
    assert err.value.code == libsrt.REJX_UNAUTHORIZED


def test_access_control_form() -> None:
    sid = parse_streamid(f"#!::r={PATH},m=publish,s={JWT}".encode())
    assert (sid.action, sid.path, sid.token) == ("publish", PATH, JWT)
    # m=request (or no m) is SRT's word for reading; unknown keys such as h are ignored
    assert parse_streamid(f"#!::h=example,r={PATH},s={JWT}".encode()).action == "read"
    assert parse_streamid(f"#!::r={PATH},m=request,u=k1,s=k1".encode()).stream_key == "k1"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, libsrt.REJX_BAD_REQUEST),
        (b"", libsrt.REJX_BAD_REQUEST),
        (f"publish:{PATH}:trax".encode(), libsrt.REJX_BAD_REQUEST),
        (f"publish:{PATH}:trax:{JWT}:extra".encode(), libsrt.REJX_BAD_REQUEST),
        (f"play:{PATH}:trax:{JWT}".encode(), libsrt.REJX_BAD_MODE),
        (f"Publish:{PATH}:trax:{JWT}".encode(), libsrt.REJX_BAD_MODE),
        (f"publish::trax:{JWT}".encode(), libsrt.REJX_BAD_REQUEST),
        (f"publish:{PATH}:trax:".encode(), libsrt.REJX_UNAUTHORIZED),
        (f"#!::r={PATH},m=publish".encode(), libsrt.REJX_UNAUTHORIZED),
        (f"#!::r={PATH},m=bidirectional,s={JWT}".encode(), libsrt.REJX_BAD_MODE),
        (f"#!::r={PATH},r={PATH},s={JWT}".encode(), libsrt.REJX_BAD_REQUEST),
        (f"#!::r={PATH},novalue".encode(), libsrt.REJX_BAD_REQUEST),
        (f"publish:{PATH} :trax:{JWT}".encode(), libsrt.REJX_BAD_REQUEST),
        ("publish:inputs/srt-é:trax:x".encode(), libsrt.REJX_BAD_REQUEST),
    ],
)
def test_refusals_carry_a_rejection_code(raw: bytes | None, code: int) -> None:
    with pytest.raises(StreamIdError) as err:
        parse_streamid(raw)
    assert err.value.code == code


def test_percent_encoded_streamid_is_refused_and_says_so() -> None:
    raw = f"%23!::r={PATH},m=publish,s={JWT}".encode()
    with pytest.raises(StreamIdError) as err:
        parse_streamid(raw)
    assert err.value.code == libsrt.REJX_BAD_REQUEST
    assert "percent-encoded" in err.value.message
    # never decoded: the same streamid with its escape undone would have been accepted
    assert parse_streamid(raw.replace(b"%23", b"#")).token == JWT


def test_512_byte_cap() -> None:
    prefix = f"publish:{PATH}:trax:".encode()
    fits = prefix + b"a" * (MAX_STREAMID_BYTES - len(prefix))
    assert len(parse_streamid(fits).token or "") == MAX_STREAMID_BYTES - len(prefix)
    with pytest.raises(StreamIdError) as err:
        parse_streamid(fits + b"a")
    assert "512" in err.value.message


def test_secrets_stay_out_of_repr_and_messages() -> None:
    sid = parse_streamid(f"publish:{PATH}:trax:{JWT}".encode())
    assert JWT not in repr(sid) and JWT not in str(sid)
    key_sid = parse_streamid(f"publish:{PATH}:live_secret:live_secret".encode())
    assert "live_secret" not in repr(key_sid)
    with pytest.raises(StreamIdError) as err:
        parse_streamid(f"publish:{PATH}:live_secret:live_other".encode())
    assert "live_secret" not in err.value.message and "live_other" not in err.value.message


@given(st.binary(max_size=700))
def test_never_raises_anything_else_on_arbitrary_bytes(raw: bytes) -> None:
    try:
        sid = parse_streamid(raw)
    except StreamIdError as exc:
        assert exc.code in (libsrt.REJX_BAD_REQUEST, libsrt.REJX_UNAUTHORIZED, libsrt.REJX_BAD_MODE)
        return
    assert len(raw) <= MAX_STREAMID_BYTES and b"%" not in raw
    assert sid.action in ("publish", "read") and sid.path


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=600))
def test_printable_streamids_parse_or_refuse(text: str) -> None:
    raw = text.encode()
    try:
        sid = parse_streamid(raw)
    except StreamIdError:
        return
    secret = sid.token or sid.stream_key
    assert secret and secret in text and sid.path in text


@given(
    st.sampled_from(["publish", "read"]),
    st.from_regex(r"[A-Za-z0-9/_-]{1,60}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9._-]{1,300}", fullmatch=True),
)
def test_round_trip_of_the_token_form(action: str, path: str, token: str) -> None:
    sid = parse_streamid(f"{action}:{path}:trax:{token}".encode())
    assert (sid.action, sid.path, sid.token) == (action, path, token)
