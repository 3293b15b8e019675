"""Request ids minted per request: ``req_`` + a well-formed ULID, unique, time-ordered by millisecond."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from trax.domain.ids import _encode, parse_id
from trax.server.requestids import RequestIds, encode_ulid


@given(st.integers(0, (1 << 48) - 1), st.integers(0, (1 << 80) - 1))
def test_the_encoding_is_the_ulid_encoding_of_entity_ids(ms: int, tail: int) -> None:
    assert encode_ulid(ms, tail) == _encode(ms, 10) + _encode(tail, 16)


def test_ids_are_unique_well_formed_and_carry_the_time() -> None:
    ids = RequestIds()
    before = time.time_ns() // 1_000_000
    minted = [ids.new() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(minted)) == len(minted)
    for rid in minted[::499]:
        prefix, ms = parse_id(rid)
        assert prefix == "req" and before <= ms <= after


def test_two_generators_start_apart() -> None:
    assert RequestIds().new()[14:] != RequestIds().new()[14:]
