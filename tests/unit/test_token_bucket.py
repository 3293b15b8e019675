"""The memory token bucket, driven by a fake clock: the capacity + rate x T bound and its headers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trax.plugins.memory_limits import MemoryRateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


capacities = st.integers(min_value=1, max_value=50)
rates = st.floats(min_value=0.01, max_value=100, allow_nan=False, allow_infinity=False)
# gaps between requests, often zero (bursts), sometimes long (idle)
gaps = st.lists(
    st.one_of(st.just(0.0), st.floats(min_value=0, max_value=0.5), st.floats(min_value=0, max_value=30)),
    min_size=1,
    max_size=300,
)


def _max_in_any_window_ok(grants: list[float], capacity: int, rate: float) -> tuple[bool, str]:
    # The densest window of length T has grants at both ends, so checking every pair covers every window.
    for i in range(len(grants)):
        for j in range(i, len(grants)):
            t = grants[j] - grants[i]
            count = j - i + 1
            if count > capacity + rate * t + 1e-6:
                return False, f"{count} grants in {t:.6f}s (bound {capacity + rate * t:.6f})"
    return True, ""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capacity=capacities, rate=rates, gaps=gaps)
def test_never_more_than_capacity_plus_rate_times_t_in_any_window(
    capacity: int, rate: float, gaps: list[float]
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock)
    grants: list[float] = []
    for gap in gaps:
        clock.now += gap
        if bucket.take("k", capacity, rate).allowed:
            grants.append(clock.now)
    ok, why = _max_in_any_window_ok(grants, capacity, rate)
    assert ok, why


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    capacity=capacities,
    rate=rates,
    steps=st.lists(
        st.tuples(st.one_of(st.just(0.0), st.floats(min_value=0, max_value=2)), st.sampled_from("abcdefg")),
        min_size=20,
        max_size=300,
    ),
    overrides=st.dictionaries(st.sampled_from("abcdefg"), capacities),
)
def test_bound_holds_per_key_at_the_key_cap(
    capacity: int, rate: float, steps: list[tuple[float, str]], overrides: dict[str, int]
) -> None:
    # as many keys as max_keys, each with its own capacity (per-key overrides): the store is full all the
    # time, and a bucket is forgotten only once max_keys *other* keys were used since its own last use
    clock = FakeClock()
    bucket = TokenBucket(clock, max_keys=7)
    grants: dict[str, list[float]] = {}
    for gap, key in steps:
        clock.now += gap
        if bucket.take(key, overrides.get(key, capacity), rate).allowed:
            grants.setdefault(key, []).append(clock.now)
        assert len(bucket) <= 7
    for key, times in grants.items():
        ok, why = _max_in_any_window_ok(times, overrides.get(key, capacity), rate)
        assert ok, f"key {key}: {why}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capacity=capacities, rate=rates, gaps=gaps, cost=st.integers(min_value=1, max_value=5))
def test_decisions_are_consistent(capacity: int, rate: float, gaps: list[float], cost: int) -> None:
    cost = min(cost, capacity)
    clock = FakeClock()
    bucket = TokenBucket(clock)
    for gap in gaps:
        clock.now += gap
        d = bucket.take("k", capacity, rate, cost)
        assert d.limit == capacity
        assert 0 <= d.remaining <= capacity
        assert 0 <= d.reset_after <= capacity / rate + 1e-6
        if d.allowed:
            assert d.retry_after == 0
        else:
            assert d.retry_after > 0
            assert d.remaining < cost  # refused only when fewer whole tokens than the cost are left
    # Waiting exactly Retry-After makes the next request succeed.
    while bucket.take("k", capacity, rate, cost).allowed:
        pass
    refused = bucket.take("k", capacity, rate, cost)
    assert not refused.allowed
    clock.now += refused.retry_after
    assert bucket.take("k", capacity, rate, cost).allowed
    # Waiting RateLimit-Reset refills the bucket completely.
    d = bucket.take("k", capacity, rate, 1) if capacity > cost else None
    probe = d or bucket.take("k", capacity, rate, cost)
    clock.now += probe.reset_after
    after_reset = bucket.take("k", capacity, rate, 1)
    assert after_reset.allowed
    assert after_reset.remaining == capacity - 1


def test_fresh_bucket_allows_a_burst_of_capacity_then_refills_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock)
    results = [bucket.take("k", 5, 2.0) for _ in range(7)]
    assert [r.allowed for r in results] == [True] * 5 + [False] * 2
    assert [r.remaining for r in results[:5]] == [4, 3, 2, 1, 0]
    assert results[5].retry_after == pytest.approx(0.5)
    assert results[4].reset_after == pytest.approx(2.5)
    clock.now += 0.49
    assert not bucket.take("k", 5, 2.0).allowed
    clock.now += 0.02
    assert bucket.take("k", 5, 2.0).allowed
    # separate keys have separate buckets
    assert bucket.take("other", 5, 2.0).remaining == 4


def test_a_clock_that_steps_back_earns_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock)
    for _ in range(3):
        bucket.take("k", 3, 1.0)
    clock.now -= 100
    assert not bucket.take("k", 3, 1.0).allowed
    clock.now += 100  # back where it was: still no time has passed since the last refill
    assert not bucket.take("k", 3, 1.0).allowed
    clock.now += 1
    assert bucket.take("k", 3, 1.0).allowed


def test_eviction_drops_the_least_recently_used_bucket() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock, max_keys=2)
    bucket.take("old", 2, 1.0)
    bucket.take("recent", 2, 1.0)
    bucket.take("recent", 2, 1.0)
    bucket.take("old", 2, 1.0)  # "old" is now the most recently used
    bucket.take("new", 2, 1.0)
    assert len(bucket) == 2
    clock.now += 1.0
    # "old" kept its state: empty, plus one token refilled in one second, not a fresh bucket of two
    after = bucket.take("old", 2, 1.0)
    assert after.allowed and after.remaining == 0
    # "recent" was dropped: it starts again from a full bucket
    assert bucket.take("recent", 2, 1.0).remaining == 1


class CountingDict(OrderedDict[str, Any]):
    """Counts every walk over the buckets: eviction must not need one."""

    walks = 0

    def __iter__(self) -> Iterator[str]:
        CountingDict.walks += 1
        return super().__iter__()

    def items(self) -> Any:
        CountingDict.walks += 1
        return super().items()

    def values(self) -> Any:
        CountingDict.walks += 1
        return super().values()


def test_many_distinct_keys_stay_bounded_and_eviction_does_not_scan() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock, max_keys=100)
    bucket._state = CountingDict(bucket._state)
    CountingDict.walks = 0
    # drained buckets that never refill in the test's time: none of them is "full", all must still go
    for i in range(5_000):
        bucket.take(f"addr:{i}", 1, 1e-6)
        assert len(bucket) <= 100
    assert len(bucket) == 100
    assert CountingDict.walks == 0


@pytest.mark.anyio
async def test_memory_limiter_backend_uses_the_bucket() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(TokenBucket(clock))
    await limiter.open()
    first = await limiter.acquire("key:a", capacity=2, refill_per_second=1)
    await limiter.acquire("key:a", capacity=2, refill_per_second=1)
    third = await limiter.acquire("key:a", capacity=2, refill_per_second=1)
    await limiter.close()
    assert first.allowed and first.remaining == 1
    assert not third.allowed and third.retry_after == pytest.approx(1.0)
