"""Time-ordered prefixed ids: format, order, parse round-trip, alphabet."""

from __future__ import annotations

import itertools
import re
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trax.domain.ids import CROCKFORD, IdGenerator, looks_like_id, parse_id

ID_RE = re.compile(r"^([a-z]+)_([0-9A-HJKMNP-TV-Z]{26})$")
MAX_MS = (1 << 48) - 1

prefixes = st.sampled_from(["acct", "studio", "src", "dst", "conn", "msg", "asset", "upl", "key", "whk", "evt"])
# Clock readings that may stand still or step back: ids must still increase.
clock_steps = st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=200)


def _clock(readings: list[int]) -> tuple[IdGenerator, list[int]]:
    it = iter(readings)
    return IdGenerator(lambda: next(it)), readings


def test_crockford_alphabet_excludes_ambiguous_letters() -> None:
    assert len(CROCKFORD) == 32
    assert len(set(CROCKFORD)) == 32
    assert not set("ILOU") & set(CROCKFORD)
    assert list(CROCKFORD) == sorted(CROCKFORD)  # so string order is numeric order


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing checks: CI is noisy
@given(prefix=prefixes, start=st.integers(min_value=0, max_value=MAX_MS - 10_000), steps=clock_steps)
def test_ids_have_the_documented_format(prefix: str, start: int, steps: list[int]) -> None:
    readings = []
    now = start
    for s in steps:
        now = max(0, now + s)
        readings.append(now)
    gen, _ = _clock(readings)
    for _ in readings:
        value = gen.new(prefix)
        m = ID_RE.match(value)
        assert m is not None, value
        assert m.group(1) == prefix
        assert set(m.group(2)) <= set(CROCKFORD)
        assert looks_like_id(value, prefix)
        assert not looks_like_id(value, prefix + "x")


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing checks: CI is noisy
@given(start=st.integers(min_value=0, max_value=MAX_MS - 10_000), steps=clock_steps)
def test_ids_strictly_increase_even_when_the_clock_stalls_or_steps_back(start: int, steps: list[int]) -> None:
    readings = []
    now = start
    for s in steps:
        now = max(0, now + s)
        readings.append(now)
    gen, _ = _clock(readings)
    ids = [gen.ulid() for _ in readings]
    assert all(a < b for a, b in itertools.pairwise(ids)), ids


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing checks: CI is noisy
@given(prefix=prefixes, ms=st.lists(st.integers(min_value=0, max_value=MAX_MS - 1), min_size=1, max_size=50))
def test_parse_round_trips_prefix_and_timestamp(prefix: str, ms: list[int]) -> None:
    ms = sorted(ms)  # a forward-moving clock: each id carries its own reading
    gen, _ = _clock(ms)
    for reading in ms:
        got_prefix, got_ms = parse_id(gen.new(prefix))
        assert got_prefix == prefix
        assert got_ms == reading


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing checks: CI is noisy
@given(value=st.text(max_size=40))
def test_parse_refuses_what_is_not_an_id(value: str) -> None:
    if ID_RE.match(value):
        return
    with pytest.raises(ValueError):
        parse_id(value)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "studio",
        "studio_",
        "Studio_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "studio_01ARZ3NDEKTSV4RRFFQ69G5FA",
        "studio_01ARZ3NDEKTSV4RRFFQ69G5FAI",
        "studio_01arz3ndektsv4rrffq69g5fav",
        "studio-01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ],
)
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_id(bad)


def test_ids_strictly_increase_across_threads() -> None:
    gen = IdGenerator()
    out: list[list[str]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        out[i].extend(gen.ulid() for _ in range(2000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    every = [x for chunk in out for x in chunk]
    assert len(set(every)) == len(every)
    for chunk in out:  # each thread saw a strictly increasing sequence
        assert all(a < b for a, b in itertools.pairwise(chunk))


def test_random_part_overflow_borrows_the_next_millisecond() -> None:
    gen = IdGenerator(lambda: 1000)
    first = gen.ulid()
    # force the in-millisecond counter to its last value, as 2^79 ids in one ms would
    gen._last_rand = (1 << 80) - 1
    second = gen.ulid()
    assert second > first
    assert parse_id("x_" + second)[1] == 1001
