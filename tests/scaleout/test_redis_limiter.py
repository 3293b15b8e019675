"""The ``redis`` token bucket against a real Redis: arithmetic, sharing, outage and recovery."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from trax_redis import RedisLimiterOptions, RedisRateLimiter

from tests.support.tools import require_tool
from trax.domain.errors import Unavailable
from trax.testing.servers import RedisServer

pytestmark = pytest.mark.anyio


async def _limiter(url: str, **opts: object) -> RedisRateLimiter:
    lim = RedisRateLimiter(RedisLimiterOptions(url=url, prefix=f"t{uuid.uuid4().hex[:8]}:", **opts))  # type: ignore[arg-type]
    await lim.open()
    return lim


@pytest.fixture
async def limiter(redis_server: RedisServer) -> AsyncIterator[RedisRateLimiter]:
    lim = await _limiter(redis_server.url)
    yield lim
    await lim.close()


async def test_bucket_grants_capacity_then_refuses_with_retry_after(limiter: RedisRateLimiter) -> None:
    got = [await limiter.acquire("k", capacity=3, refill_per_second=0.05) for _ in range(4)]
    assert [d.allowed for d in got] == [True, True, True, False]
    assert [d.remaining for d in got] == [2, 1, 0, 0]
    assert all(d.limit == 3 for d in got)
    refused = got[-1]
    # one token needs up to 20 s at 0.05/s; a little has refilled since the first call
    assert 0 < refused.retry_after <= 20.0
    assert 0 < refused.reset_after <= 60.0


async def test_keys_have_separate_buckets_and_cost_counts(limiter: RedisRateLimiter) -> None:
    assert (await limiter.acquire("a", capacity=5, refill_per_second=0.1, cost=5)).allowed
    assert not (await limiter.acquire("a", capacity=5, refill_per_second=0.1)).allowed
    assert (await limiter.acquire("b", capacity=5, refill_per_second=0.1, cost=4)).allowed
    assert not (await limiter.acquire("b", capacity=5, refill_per_second=0.1, cost=2)).allowed


async def test_bucket_refills_with_time(limiter: RedisRateLimiter) -> None:
    for _ in range(2):
        assert (await limiter.acquire("r", capacity=2, refill_per_second=20)).allowed
    first_refusal = await limiter.acquire("r", capacity=2, refill_per_second=20)
    if first_refusal.allowed:  # the machine was slow enough for a refill already: the bucket did refill
        return
    await asyncio.sleep(first_refusal.retry_after + 0.05)
    assert (await limiter.acquire("r", capacity=2, refill_per_second=20)).allowed


async def test_an_idle_bucket_expires_from_redis(redis_server: RedisServer) -> None:
    lim = await _limiter(redis_server.url)
    client = Redis.from_url(redis_server.url)
    try:
        await lim.acquire("exp", capacity=10, refill_per_second=5)
        ttl = await client.pttl(lim._o.prefix + "exp")
        # one token spent at 5/s: full again in 0.2 s, plus a second of slack
        assert 0 < ttl <= 1200
    finally:
        await client.aclose()
        await lim.close()


async def test_instances_share_one_bucket_under_concurrency(redis_server: RedisServer) -> None:
    """Two limiters (as two processes would hold) never grant more than capacity + rate x T."""
    one = await _limiter(redis_server.url)
    two = RedisRateLimiter(RedisLimiterOptions(url=redis_server.url, prefix=one._o.prefix))  # type: ignore[arg-type]
    await two.open()
    capacity, rate = 20, 1.0
    try:
        start = time.monotonic()
        results = await asyncio.gather(
            *((one if i % 2 else two).acquire("shared", capacity=capacity, refill_per_second=rate) for i in range(300))
        )
        elapsed = time.monotonic() - start
    finally:
        await one.close()
        await two.close()
    granted = sum(d.allowed for d in results)
    assert granted >= capacity
    assert granted <= capacity + rate * elapsed
    # each instance alone would have granted its own full bucket: the two together must not
    assert granted < 2 * capacity


async def test_redis_down_is_unavailable_quickly_and_recovers_by_itself(own_redis: RedisServer) -> None:
    lim = await _limiter(own_redis.url, timeout=1.0, retry_after=3)
    try:
        assert (await lim.acquire("k", capacity=5, refill_per_second=1)).allowed
        own_redis.stop()
        with pytest.raises(Unavailable) as err:
            async with asyncio.timeout(10):  # the configured 1 s bounds it; this only keeps a bug from hanging
                await lim.acquire("k", capacity=5, refill_per_second=1)
        assert err.value.retry_after == 3
        assert "redis://" not in err.value.message
        own_redis.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                decision = await lim.acquire("k", capacity=5, refill_per_second=1)
                break
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        # Redis kept nothing (no persistence): the bucket starts full again
        assert decision.allowed and decision.remaining == 4
    finally:
        await lim.close()


async def test_open_refuses_an_unreachable_redis() -> None:
    from trax.ports import free_port

    lim = RedisRateLimiter(RedisLimiterOptions(url=f"redis://127.0.0.1:{free_port()}/0", timeout=0.5))  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        await lim.open()


def test_url_is_secret_in_reprs() -> None:
    opts = RedisLimiterOptions(url="redis://:hunter2@127.0.0.1:1/0")  # type: ignore[arg-type]
    assert "hunter2" not in repr(opts)
    assert "hunter2" not in repr(RedisRateLimiter(opts))


SKEWED_CLIENT = """
import asyncio, json, sys
from trax_redis import RedisLimiterOptions, RedisRateLimiter

async def main() -> None:
    lim = RedisRateLimiter(RedisLimiterOptions(url=sys.argv[1], prefix=sys.argv[2]))
    await lim.open()
    got = [await lim.acquire("skew", capacity=10, refill_per_second=0.2) for _ in range(20)]
    await lim.close()
    print(json.dumps(sum(d.allowed for d in got)))

asyncio.run(main())
"""


@pytest.mark.parametrize("skew", ["+2h", "-2h"])
async def test_a_process_whose_clock_is_skewed_shares_the_bucket_correctly(
    redis_server: RedisServer, tmp_path: Path, skew: str
) -> None:
    """Time comes from Redis: a client two hours off neither refills nor freezes the shared bucket."""
    faketime = require_tool("faketime", why="shifts one client's clock to show the limiter ignores it")
    script = tmp_path / "skewed_client.py"
    script.write_text(SKEWED_CLIENT)
    local = await _limiter(redis_server.url)
    try:
        start = time.monotonic()
        first = [await local.acquire("skew", capacity=10, refill_per_second=0.2) for _ in range(10)]
        proc = await asyncio.create_subprocess_exec(
            faketime, "-f", skew, sys.executable, str(script), redis_server.url, local._o.prefix,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        skewed_granted = int(out)
        last = await local.acquire("skew", capacity=10, refill_per_second=0.2)
        elapsed = time.monotonic() - start
    finally:
        await local.close()
    granted = sum(d.allowed for d in first) + skewed_granted + int(last.allowed)
    assert sum(d.allowed for d in first) == 10
    # a limiter on the clients' clocks would have refilled the whole bucket for "+2h"
    assert granted <= 10 + 0.2 * elapsed + 1e-9, (skewed_granted, elapsed)


@pytest.mark.parametrize("url", ["http://:hunter2@h/0", "redis://:hunter2@h:99999/0", "redis://:hunter2@[::1/0"])
def test_a_malformed_url_is_a_config_error_that_does_not_quote_it(url: str) -> None:
    from trax_redis import RedisBusOptions

    from trax.settings import ConfigError, validate_options

    for model, where in ((RedisLimiterOptions, "limits.options"), (RedisBusOptions, "events.options")):
        with pytest.raises(ConfigError) as err:
            validate_options(model, {"url": url}, where)
        assert f"{where}.url" in str(err.value) and "hunter2" not in str(err.value)
