"""The keyed hash behind credential hashes, upload tokens and cursors."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trax.domain.errors import InvalidRequest
from trax.domain.keyed_hash import MAX_KEY_BYTES, fit_key, keyed_hash
from trax.domain.keys import hash_secret
from trax.domain.pages import CursorCodec

KEY = b"k" * 48


def test_it_is_keyed_blake2b_and_the_key_and_purpose_both_matter() -> None:
    got = keyed_hash(KEY, b"data", person=b"trax-test")
    assert got == hashlib.blake2b(b"data", key=KEY, person=b"trax-test", digest_size=32).digest()
    assert got != keyed_hash(b"j" * 48, b"data", person=b"trax-test")
    assert got != keyed_hash(KEY, b"data", person=b"trax-other")
    assert len(keyed_hash(KEY, b"data", person=b"trax-test", size=12)) == 12


@given(st.binary(min_size=MAX_KEY_BYTES + 1, max_size=300))
def test_a_key_longer_than_blake2b_takes_is_condensed_not_cut(key: bytes) -> None:
    fitted = fit_key(key)
    assert len(fitted) == MAX_KEY_BYTES and fitted != key[:MAX_KEY_BYTES]
    # changing only the bytes past 64 still changes every hash: nothing of the key is ignored
    other = key[:MAX_KEY_BYTES] + bytes([key[MAX_KEY_BYTES] ^ 1]) + key[MAX_KEY_BYTES + 1 :]
    assert keyed_hash(key, b"x", person=b"t") != keyed_hash(other, b"x", person=b"t")


def test_a_secret_hash_never_verifies_as_another_use_of_the_same_key() -> None:
    """An API-key hash, an upload-token hash and a cursor MAC of the same bytes all differ."""
    secret = "sk_live_" + "a" * 40
    as_key = bytes.fromhex(hash_secret(secret, KEY))
    as_upload = keyed_hash(KEY, secret.encode(), person=b"trax-upload")
    as_cursor = keyed_hash(KEY, secret.encode(), person=b"trax-cursor", size=12)
    assert len({as_key, as_upload, as_cursor, as_key[:12]}) == 4


def test_cursors_from_a_long_server_key_round_trip_and_do_not_cross_keys() -> None:
    long_key = bytes(range(100))
    cursor = CursorCodec(long_key).encode("studio", "studio_01")
    assert CursorCodec(long_key).decode("studio", cursor) == "studio_01"
    other = CursorCodec(long_key[:64] + b"\xff" * 36)
    with pytest.raises(InvalidRequest):
        other.decode("studio", cursor)
