"""The failed-authentication throttle: when an address is blocked, for how long, and that its memory is bounded."""

from __future__ import annotations

from typing import Any

import pytest

from trax.domain.errors import Unavailable
from trax.interfaces import Decision
from trax.plugins.memory_limits import MemoryRateLimiter, TokenBucket
from trax.server import auth_throttle
from trax.server.auth_throttle import AuthThrottle, address_key

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(capacity: int = 3, refill: float = 0.5) -> tuple[AuthThrottle, FakeClock]:
    clock = FakeClock()
    return AuthThrottle(MemoryRateLimiter(TokenBucket(clock)), capacity, refill, clock=clock), clock


def test_ipv6_addresses_are_grouped_by_64_and_ipv4_are_not() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff:1:2:3")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("192.0.2.1") != address_key("192.0.2.2")
    assert address_key(None) == address_key("")
    assert len(address_key("not-an-address:" + "x" * 500)) < 100  # junk is cut, not kept whole


async def test_blocked_once_the_bucket_is_spent_then_one_attempt_per_token() -> None:
    t, clock = _throttle(capacity=3, refill=0.5)
    a = address_key("192.0.2.1")
    for _ in range(2):
        await t.failed(a, "sk_live_bad")
        assert t.refused_for(a, "sk_live_bad") == 0
    await t.failed(a, "sk_live_bad")
    assert t.refused_for(a, "sk_live_bad") == pytest.approx(2.0)  # one token at 0.5/s
    assert t.refused_for(address_key("192.0.2.2"), "sk_live_bad") == 0
    clock.now += 2.0
    assert t.refused_for(a, "sk_live_bad") == 0
    await t.failed(a, "sk_live_bad")  # the refilled token is spent at once
    assert t.refused_for(a, "sk_live_bad") == pytest.approx(2.0)


async def test_good_credentials_pass_a_blocked_address_until_they_fail() -> None:
    t, _ = _throttle(capacity=1)
    a = address_key("192.0.2.1")
    t.succeeded("sk_live_good")
    await t.failed(a, "sk_live_bad")
    assert t.refused_for(a, "sk_live_bad") > 0
    assert t.refused_for(a, "sk_live_good") == 0
    await t.failed(a, "sk_live_good")  # revoked since: no pass any more
    assert t.refused_for(a, "sk_live_good") > 0


async def test_good_pass_expires() -> None:
    t, clock = _throttle(capacity=1, refill=0.0001)
    a = address_key("192.0.2.1")
    t.succeeded("sk_live_good")
    clock.now += auth_throttle.GOOD_FOR_SECONDS + 1
    await t.failed(a, "sk_live_bad")
    assert t.refused_for(a, "sk_live_good") > 0


async def test_maps_stay_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(auth_throttle, "MAX_BLOCKED_ADDRESSES", 50)
    monkeypatch.setattr(auth_throttle, "MAX_GOOD_CREDENTIALS", 50)
    t, _ = _throttle(capacity=1)
    for i in range(1_000):
        await t.failed(address_key(f"10.0.{i // 256}.{i % 256}"), None)
        t.succeeded(f"sk_live_{i}")
    assert len(t._blocked) == 50 and len(t._good) == 50
    # the most recent are the ones kept
    assert t.refused_for(address_key("10.0.3.231"), None) > 0
    assert t.refused_for(address_key("10.0.0.0"), None) == 0


async def test_a_limiter_outage_does_not_turn_a_401_into_an_error() -> None:
    class Down:
        async def open(self) -> None: ...

        async def close(self) -> None: ...

        async def acquire(self, key: str, *, capacity: int, refill_per_second: float, cost: int = 1) -> Decision:
            raise Unavailable("down")

    t = AuthThrottle(Down(), 1, 1.0)
    await t.failed(address_key("192.0.2.1"), "sk_live_bad")
    assert t.refused_for(address_key("192.0.2.1"), "sk_live_bad") == 0
