"""The ``redis`` event bus against a real Redis: fan-out, echoes, bad messages, outage and recovery."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from trax_redis import RedisBusOptions, RedisEventBus

from trax.domain.base import utcnow
from trax.domain.events import STREAM_LIVE, Event
from trax.testing.servers import RedisServer

pytestmark = pytest.mark.anyio

Recorder = tuple[list[Event], Callable[[Event], Awaitable[None]]]


def _recorder() -> Recorder:
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    return seen, handler


def _event(n: int = 0) -> Event:
    return Event(
        id=f"evt_{uuid.uuid4().hex}", type=STREAM_LIVE, account_id="acct_x", occurred_at=utcnow(), data={"n": n}
    )


async def _until(cond: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def _open(url: str, channel: str, **opts: object) -> RedisEventBus:
    bus = RedisEventBus(RedisBusOptions(url=url, channel=channel, **opts))  # type: ignore[arg-type]
    await bus.open()
    return bus


@pytest.fixture
async def buses(redis_server: RedisServer) -> AsyncIterator[tuple[RedisEventBus, RedisEventBus]]:
    channel = f"t{uuid.uuid4().hex[:8]}:events"
    one = await _open(redis_server.url, channel)
    two = await _open(redis_server.url, channel)
    yield one, two
    await one.close()
    await two.close()


async def test_an_event_reaches_subscribers_of_every_bus_once(buses: tuple[RedisEventBus, RedisEventBus]) -> None:
    one, two = buses
    seen_one, h1 = _recorder()
    seen_two, h2 = _recorder()
    one.subscribe(h1)
    two.subscribe(h2)
    events = [_event(i) for i in range(5)]
    for e in events:
        await one.publish(e)
    await _until(lambda: len(seen_two) == 5)
    assert seen_two == events  # same order, equal after the round trip through JSON
    # the publisher's own subscribers got each once, not again as an echo from Redis
    await asyncio.sleep(0.2)
    assert seen_one == events


async def test_unsubscribe_stops_delivery(buses: tuple[RedisEventBus, RedisEventBus]) -> None:
    one, two = buses
    seen, handler = _recorder()
    unsubscribe = two.subscribe(handler)
    await one.publish(_event(1))
    await _until(lambda: len(seen) == 1)
    unsubscribe()
    marker_seen, marker = _recorder()
    two.subscribe(marker)
    await one.publish(_event(2))
    await _until(lambda: len(marker_seen) == 1)
    assert len(seen) == 1


async def test_a_malformed_message_is_skipped(
    redis_server: RedisServer, buses: tuple[RedisEventBus, RedisEventBus]
) -> None:
    one, two = buses
    seen, handler = _recorder()
    two.subscribe(handler)
    client = Redis.from_url(redis_server.url)
    try:
        for junk in (b"not json", b'{"origin": 1}', b"\xff\xfe", b"[]"):
            await client.publish(two._o.channel, junk)
    finally:
        await client.aclose()
    good = _event(7)
    await one.publish(good)
    await _until(lambda: len(seen) == 1)
    assert seen == [good]


async def test_a_failing_subscriber_does_not_stop_the_others(buses: tuple[RedisEventBus, RedisEventBus]) -> None:
    one, two = buses

    async def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    seen, handler = _recorder()
    two.subscribe(broken)
    two.subscribe(handler)
    await one.publish(_event())
    await _until(lambda: len(seen) == 1)


async def test_events_published_while_redis_is_down_arrive_after_it_returns(own_redis: RedisServer) -> None:
    channel = "outage:events"
    one = await _open(own_redis.url, channel, timeout=0.5, reconnect_max_delay=0.5)
    two = await _open(own_redis.url, channel, timeout=0.5, reconnect_max_delay=0.5)
    try:
        seen_local, h1 = _recorder()
        seen_remote, h2 = _recorder()
        one.subscribe(h1)
        two.subscribe(h2)
        before = _event(-1)
        await one.publish(before)
        await _until(lambda: seen_remote == [before])
        seen_local.clear()
        seen_remote.clear()
        own_redis.stop()
        queued = [_event(i) for i in range(3)]
        for e in queued:
            async with asyncio.timeout(10):  # publish never waits on a Redis that is gone
                await one.publish(e)
        assert seen_local == queued  # local subscribers are served at once regardless
        own_redis.start()
        # both listeners reconnect by themselves; the outbox then goes out in order
        await _until(lambda: len(seen_remote) == 3, within=30)
        assert seen_remote == queued
        after = _event(9)
        await one.publish(after)
        await _until(lambda: len(seen_remote) == 4)
        assert seen_remote[-1] == after
    finally:
        await one.close()
        await two.close()


def test_url_is_secret_in_reprs() -> None:
    opts = RedisBusOptions(url="redis://:hunter2@127.0.0.1:1/0")  # type: ignore[arg-type]
    assert "hunter2" not in repr(opts)
    assert "hunter2" not in repr(RedisEventBus(opts))
