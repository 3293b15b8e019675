"""``redis`` event bus: domain events fanned out to every process over Redis pub/sub.

``publish`` hands the event to this process's subscribers at once (as the
in-process bus does) and publishes it on one channel tagged with this bus's
origin id; every other process's listener delivers it to its own subscribers
(and so to its ``trax_event`` hooks) and skips its own echoes.

Pub/sub is at-most-once: a process that is disconnected while an event is
published misses it. Events this process could not publish while Redis was down
wait in a bounded outbox and go out, in order, once Redis is back and as
many subscribers as before have resubscribed (or ``resend_max_wait`` has
passed). A publisher never fails because of Redis: the write that raised
the event has already happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from redis.asyncio import Redis

from trax.domain.errors import Unavailable
from trax.domain.events import Event
from trax.interfaces import EventHandler
from trax.plugins.memory_bus import LocalEventBus
from trax_redis.connection import REDIS_DOWN, check_url, close_client, make_client

log = logging.getLogger(__name__)


class RedisBusOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    """Redis URL; set it through ``TRAX_EVENTS__OPTIONS__URL``, never in the file."""
    channel: str = Field(default="trax:events", min_length=1)
    timeout: float = Field(default=1.0, gt=0)
    """Seconds one publish or (re)subscription may take."""
    max_connections: int = Field(default=50, ge=1)
    """Connections to Redis per process (one stays with the subscription)."""
    startup_timeout: float = Field(default=5.0, gt=0)
    """Seconds ``open`` waits for the first subscription before refusing to start."""
    reconnect_max_delay: float = Field(default=2.0, gt=0)
    resend_max_wait: float = Field(default=5.0, ge=0)
    """After an outage, seconds queued events wait for the other processes to resubscribe."""
    outbox_size: int = Field(default=10_000, ge=0)
    """Events kept for publishing while Redis is down; the oldest are dropped beyond it."""

    @field_validator("url")
    @classmethod
    def _url_shape(cls, v: SecretStr) -> SecretStr:
        return check_url(v)


class _Envelope(msgspec.Struct):
    origin: str
    event: Event


_decoder = msgspec.json.Decoder(_Envelope)


class RedisEventBus:
    def __init__(self, options: RedisBusOptions) -> None:
        self._o = options
        self._local = LocalEventBus()
        self.origin = uuid.uuid4().hex
        self._client: Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._listening = False
        self._outbox: deque[bytes] = deque(maxlen=options.outbox_size or None)
        self._flush_lock = asyncio.Lock()
        self._backlog = False
        """Publishing failed: events wait in the outbox until Redis and its subscribers are back."""
        self._back_at: float | None = None
        self._receivers = 0
        """Subscribers that received the last event published (all processes, this one included)."""
        self.dropped = 0
        """Events that could not be published before the outbox overflowed."""

    def __repr__(self) -> str:
        return f"RedisEventBus(channel={self._o.channel!r}, listening={self._listening}, backlog={len(self._outbox)})"

    # --- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        if self._client is not None:
            return
        self._client = make_client(self._o.url, self._o.timeout, self._o.max_connections)
        self._task = asyncio.create_task(self._listen(), name="trax-redis-events")
        try:
            async with asyncio.timeout(self._o.startup_timeout):
                await self._subscribed.wait()
        except TimeoutError:
            await self.close()
            raise Unavailable("Cannot subscribe to the Redis event channel.") from None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*REDIS_DOWN):
                await close_client(client)
        self._listening = False
        self._subscribed.clear()
        await self._local.close()

    # --- the EventBus protocol ----------------------------------------------------------

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        return self._local.subscribe(handler)

    async def publish(self, event: Event) -> None:
        await self._local.deliver(event)
        if self._outbox.maxlen is not None and len(self._outbox) == self._outbox.maxlen:
            self.dropped += 1
        self._outbox.append(msgspec.json.encode(_Envelope(origin=self.origin, event=event)))
        if not self._backlog:
            await self._flush()

    # --- internals ------------------------------------------------------------------------

    async def _flush(self) -> None:
        client = self._client
        if client is None:
            return
        async with self._flush_lock:
            if self._backlog and not await self._peers_are_back(client):
                return
            while self._outbox:
                try:
                    async with asyncio.timeout(self._o.timeout):
                        receivers = await client.publish(self._o.channel, self._outbox[0])
                except REDIS_DOWN as exc:
                    if not self._backlog:
                        log.warning("redis event bus: publish failed (%s); queueing events", exc.__class__.__name__)
                    self._backlog, self._back_at = True, None
                    return
                self._outbox.popleft()
                self._receivers = int(receivers)
            if self._backlog:
                log.info("redis event bus: queued events sent")
                self._backlog = False

    async def _peers_are_back(self, client: Redis) -> bool:
        """Whether a backlog may go out: pub/sub does not replay, so wait (a bounded time)
        until as many subscribers as before the outage have resubscribed."""
        try:
            async with asyncio.timeout(self._o.timeout):
                counts = await client.pubsub_numsub(self._o.channel)
        except REDIS_DOWN:
            return False
        now = asyncio.get_running_loop().time()
        if self._back_at is None:
            self._back_at = now
        subscribers = int(counts[0][1]) if counts else 0
        return subscribers >= self._receivers or now - self._back_at >= self._o.resend_max_wait

    async def _deliver_remote(self, data: Any) -> None:
        try:
            env = _decoder.decode(data)
        except (msgspec.DecodeError, TypeError):
            log.warning("redis event bus: ignoring a malformed message on %s", self._o.channel)
            return
        if env.origin != self.origin:
            await self._local.deliver(env.event)

    async def _listen(self) -> None:
        assert self._client is not None
        delay = 0.1
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(self._o.timeout * 3):
                    await pubsub.subscribe(self._o.channel)
                if self._subscribed.is_set() and not self._listening:
                    log.info("redis event bus: subscribed again")
                self._listening = True
                self._subscribed.set()
                delay = 0.1
                while True:
                    if self._outbox:
                        await self._flush()
                    msg = await pubsub.get_message(timeout=0.25)
                    if msg is not None and msg.get("type") == "message":
                        await self._deliver_remote(msg["data"])
            except REDIS_DOWN as exc:
                if self._listening:
                    log.warning("redis event bus: lost the subscription (%s); reconnecting", exc.__class__.__name__)
                self._listening = False
            except Exception:
                log.exception("redis event bus: listener failed; restarting it")
                self._listening = False
            finally:
                with contextlib.suppress(*REDIS_DOWN, RuntimeError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._o.reconnect_max_delay)
