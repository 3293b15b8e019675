"""The path hub: one publisher per stream path, any number of readers, whatever the protocols.

A publisher (SRT, RTMP, WHIP, ...) opens its path and ``send``s canonical
packets (:mod:`trax.ingest.media`); the hub fans each one out to every
reader's bounded queue without awaiting anything, so a slow reader can never
stall the publisher or the other readers: when its queue is full it is emptied
and the reader skips to the next keyframe. The hub keeps the current GOP
(packets since the last video keyframe, bounded) so a reader that joins
mid-stream starts on a picture at once; when the GOP is too long to keep, it
asks the publisher for a fresh keyframe instead.

Source status follows the path: ``connecting`` when a publisher opens it,
``live`` on its first packet, ``idle`` when it leaves (or sends nothing for
``idle_timeout`` seconds — the watchdog), ``error`` when it leaves with a
reason. Status writes go through one ordered queue so they land in the order
they happened.

Takeover: a protocol publisher (RTMP, SRT, WHIP) that opens a path which already has
one replaces it when ``publisher_takeover`` is on, as MediaMTX does: a crashed
encoder that reconnects must not wait for the watchdog to free its own path. The
old publisher is closed with :data:`TAKEOVER_REASON` (its protocol drops the
connection); readers stay attached and continue with the new one at its next
keyframe, its timestamps moved on to follow the old ones (a muxer must not see
them jump back).

A publisher whose video has sent no keyframe at all ``keyframe_warning_seconds``
after it opened keeps its status but gets the reason :data:`NO_KEYFRAMES_REASON`:
no reader can start such a stream, and the reason says why (cleared at the first
keyframe).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from fractions import Fraction
from typing import Any, Protocol

from trax.domain.errors import Conflict, Unavailable
from trax.domain.sources import SourceStatus
from trax.ingest.media import Packet, Track

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 512
DEFAULT_GOP_CACHE_PACKETS = 900  # 30 s of 30 fps video; longer GOPs ask for a keyframe instead
DEFAULT_GOP_REPLAY_PACKETS = 150
"""A newcomer is replayed at most this much when the publisher can make a keyframe on request instead."""
_END = object()
TAKEOVER_REASON = "taken over by a new publisher"
NO_KEYFRAMES_REASON = "no_keyframes"
_TAKEOVER_GAP = Fraction(1, 25)
"""Seconds put between the old publisher's last timestamp and the new one's first."""


class StatusSink(Protocol):
    """Where path status goes (``SourceService``)."""

    async def set_status(self, path: str, status: SourceStatus, reason: str | None = None) -> Any: ...


class Publisher:
    """The one sender on a path. ``send`` is synchronous and never blocks."""

    def __init__(
        self, hub: PathHub, path: str, protocol: str, tracks: Sequence[Track], *, replaceable: bool = False
    ) -> None:
        self.hub = hub
        self.path = path
        self.protocol = protocol
        self.tracks: tuple[Track, ...] = tuple(tracks)
        self.key_track: int | None = next((t.index for t in self.tracks if t.kind == "video"), None)
        self.opened_at = time.monotonic()
        self.last_packet_at = self.opened_at
        self.packets = 0
        self.bytes = 0
        self.closed = False
        self.close_reason: str | None = None
        self.reordered: set[int] = set()
        """Tracks seen with pts != dts (B-frames): not playable by WebRTC without a re-encode."""
        self.on_keyframe_request: Callable[[], None] | None = None
        """Set by the protocol: ask the encoder for a keyframe (e.g. an RTCP PLI)."""
        self.replaceable = replaceable
        """Opened by a protocol that takes over: a newer publisher of the same kind may replace it."""
        self.taken_over = False
        self.keyframes = 0
        self.last_keyframe_at: float | None = None
        self.no_keyframes = False
        """The keyframe warning is on (reason ``no_keyframes`` recorded)."""
        self._keyframe_asked_at: float | None = None
        self._time_base = {t.index: t.time_base for t in self.tracks}
        self._shift: dict[int, int] | None = None
        """Per track, added to every timestamp (after a takeover), fixed at the first packet."""
        self._shift_after: Fraction | None = None
        """Seconds the first packet after a takeover has to follow (the old publisher's last timestamp)."""
        self.last_time: Fraction | None = None
        """The latest timestamp sent, in seconds (where a successor continues)."""
        self._readers: set[Reader] = set()
        self._gop: list[Packet] = []
        self._gop_complete = self.key_track is None
        self._close_callbacks: list[Callable[[str | None], Any]] = []
        self._done = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Publisher {self.path} via {self.protocol} readers={len(self._readers)} packets={self.packets}>"

    @property
    def readers(self) -> int:
        return len(self._readers)

    def on_close(self, callback: Callable[[str | None], Any]) -> Callable[[], None]:
        """Call ``callback(reason)`` when the publisher leaves (also when the watchdog ends it).

        The result unregisters it: a watcher that leaves first (a viewer) must not pile up on a 24/7 publisher."""
        self._close_callbacks.append(callback)

        def forget() -> None:
            with contextlib.suppress(ValueError):
                self._close_callbacks.remove(callback)

        return forget

    def is_keyframe(self, packet: Packet) -> bool:
        return packet.keyframe and (self.key_track is None or packet.track == self.key_track)

    def send(self, packet: Packet) -> None:
        if self.closed or self.taken_over:  # taken over: its close is under way, the path is not its own
            return
        self.last_packet_at = time.monotonic()
        if self.packets == 0:
            self.hub._status(self.path, SourceStatus.LIVE)
        self.packets += 1
        self.bytes += len(packet.data)
        if packet.pts != packet.dts:
            self.reordered.add(packet.track)
        if self._shift_after is not None:
            packet = self._shifted(packet)
        tb = self._time_base.get(packet.track)
        if tb is not None:
            t = packet.dts * tb
            if self.last_time is None or t > self.last_time:
                self.last_time = t
        if self.is_keyframe(packet):
            self.keyframes += 1
            self.last_keyframe_at = self.last_packet_at
            if self.no_keyframes:
                self.no_keyframes = False
                log.info("%s: its %s publisher sent a keyframe; readers can start", self.path, self.protocol)
                self.hub._status(self.path, SourceStatus.LIVE)
            self._gop = [packet]
            self._gop_complete = True
        elif self._gop_complete:
            if len(self._gop) < self.hub.gop_cache_packets:
                self._gop.append(packet)
            else:  # too long to replay: drop it and let newcomers ask for a keyframe
                self._gop = []
                self._gop_complete = False
        for reader in tuple(self._readers):
            reader._push(packet)

    def _shifted(self, packet: Packet) -> Packet:
        """``packet`` on the path's timeline after a takeover: it follows what readers got from the old publisher."""
        assert self._shift_after is not None
        if self._shift is None:  # one offset in seconds for all tracks keeps them in sync
            first = packet.dts * self._time_base.get(packet.track, Fraction(1, 1000))
            offset = self._shift_after + _TAKEOVER_GAP - first
            self._shift = {t.index: round(offset / t.time_base) for t in self.tracks}
        shift = self._shift.get(packet.track, 0)
        if not shift:
            return packet
        return dataclasses.replace(packet, pts=packet.pts + shift, dts=packet.dts + shift)

    def check_keyframes(self, now: float, limit: float) -> None:
        """Record ``no_keyframes`` (once) when media has flowed ``limit`` seconds and the video never had a keyframe.

        Only "never": once one came, the GOP cache starts newcomers on it, and long keyframe intervals
        are normal (x264's default is 250 frames, 10 s at 25 fps; WebRTC encoders send them on request).
        """
        if self.no_keyframes or self.keyframes or self.key_track is None or self.packets == 0 or self.closed:
            return
        since = self.opened_at
        if now - since < limit:
            return
        if self.on_keyframe_request is not None:  # a WebRTC encoder: ask first, and give it as long again
            if self._keyframe_asked_at is None:
                self._keyframe_asked_at = now
                self.request_keyframe()
                return
            since = self._keyframe_asked_at
            if now - since < limit:
                return
        self.no_keyframes = True
        log.warning(
            "%s: its %s publisher has sent no video keyframe for %.0f s; no reader can start it "
            "(an SRT sender dropping packets over 1316 bytes, or an encoder without keyframes)",
            self.path,
            self.protocol,
            now - since,
        )
        self.hub._status(self.path, SourceStatus.LIVE, NO_KEYFRAMES_REASON)

    def cached_gop(self) -> tuple[Packet, ...]:
        """The packets since the last video keyframe, as kept for late joiners (read-only; may be empty)."""
        return tuple(self._gop)

    def request_keyframe(self) -> None:
        if self.on_keyframe_request is not None and self.key_track is not None:
            try:
                self.on_keyframe_request()
            except Exception:
                log.exception("keyframe request on %s failed", self.path)

    def _attach(self, reader: Reader) -> None:
        self._readers.add(reader)
        reader._bind(self)
        # a long replay is a burst of stale pictures; a publisher that can make a keyframe is asked instead
        short = len(self._gop) <= self.hub.gop_replay_packets or self.on_keyframe_request is None
        if self._gop and self._gop_complete and short:
            for packet in self._gop:
                reader._push(packet)
        elif self.key_track is not None:
            reader._need_keyframe = True
            self.request_keyframe()

    def _attach_continuing(self, reader: Reader) -> None:
        """A reader of the publisher this one took over: it goes on at this publisher's first keyframe."""
        self._readers.add(reader)
        reader._bind(self)
        reader._need_keyframe = self.key_track is not None

    def _detach(self, reader: Reader) -> None:
        self._readers.discard(reader)

    def _hand_over(self, successor: Publisher) -> None:
        """Give this publisher's readers to ``successor`` (same tracks) or end them (other tracks)."""
        self.taken_over = True
        successor._shift_after = self.last_time if self.last_time is not None else Fraction(0)
        same = _comparable(self.tracks) == _comparable(successor.tracks)
        for reader in tuple(self._readers):
            self._readers.discard(reader)
            if same:
                successor._attach_continuing(reader)
            else:  # its muxer was built for the old tracks: the reader starts again
                reader._end()

    async def close(self, reason: str | None = None) -> None:
        """Leave the path: readers' iterations end; the Source goes ``idle`` (or ``error`` with ``reason``)."""
        if self.closed:
            await self._done.wait()
            return
        self.closed = True
        self.close_reason = reason
        self._gop = []
        for reader in tuple(self._readers):
            reader._end()
        self._readers.clear()
        self.hub._release(self)
        if self.taken_over:  # the successor owns the Source's status now
            done = self.hub._status_done()
        else:
            status = SourceStatus.ERROR if reason else SourceStatus.IDLE
            done = self.hub._status(self.path, status, reason)
        for cb in self._close_callbacks:
            try:
                result = cb(reason)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("a close callback of %s failed", self.path)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(done), timeout=10)
        self._done.set()

    async def wait_closed(self) -> None:
        await self._done.wait()


class Reader:
    """A consumer of one path: ``async with hub.open_reader(path) as r: await r.tracks(); async for p in r``."""

    def __init__(self, hub: PathHub, path: str, max_queue: int) -> None:
        self.hub = hub
        self.path = path
        self.max_queue = max_queue
        self.received = 0
        self.dropped = 0
        self.publisher: Publisher | None = None
        self._queue: deque[Packet | object] = deque()
        self._wakeup = asyncio.Event()
        self._bound = asyncio.Event()
        self._need_keyframe = False
        self._ended = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<Reader {self.path} queued={len(self._queue)} dropped={self.dropped}>"

    def _bind(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self._bound.set()

    def _push(self, packet: Packet) -> None:
        if self._ended:
            return
        pub = self.publisher
        if self._need_keyframe:
            if pub is None or not pub.is_keyframe(packet):
                self.dropped += 1
                return
            self._need_keyframe = False
        if len(self._queue) >= self.max_queue:
            # slow reader: everything queued is stale; resume on the next keyframe
            self.dropped += len(self._queue)
            self._queue.clear()
            if pub is not None and not pub.is_keyframe(packet):
                self._need_keyframe = True
                self.dropped += 1
                pub.request_keyframe()
                self._wakeup.set()
                return
        self._queue.append(packet)
        self._wakeup.set()

    def _end(self) -> None:
        self._ended = True
        self._queue.append(_END)
        self._wakeup.set()
        self._bound.set()

    async def tracks(self, wait: float | None = None) -> tuple[Track, ...]:
        """The publisher's tracks, waiting for a publisher to arrive (``TimeoutError`` after ``wait`` s)."""
        async with asyncio.timeout(wait):
            await self._bound.wait()
        if self.publisher is None:
            raise Unavailable("The path has no publisher.")
        return self.publisher.tracks

    def request_keyframe(self) -> None:
        if self.publisher is not None:
            self.publisher.request_keyframe()

    def discard_queued(self) -> int:
        """Drop what is queued (a newcomer's GOP replay, say) and return how many packets that was."""
        dropped = 0
        while self._queue and self._queue[0] is not _END:
            self._queue.popleft()
            dropped += 1
        self.dropped += dropped
        return dropped

    async def wait(self, seconds: float | None) -> None:
        """Return when a packet (or the end) is queued, on :meth:`wake`, or after ``seconds`` (``None``: no limit)."""
        if self._queue or self._closed:
            return
        self._wakeup.clear()
        if seconds is None:
            # no timer to arm and cancel on every packet: the caller wakes itself for anything else it watches
            await self._wakeup.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()

    def wake(self) -> None:
        """End a pending :meth:`wait` now (its caller has something else to look at)."""
        self._wakeup.set()

    def get_nowait(self) -> Packet | None:
        """The next queued packet, or ``None`` when nothing is queued (``StopAsyncIteration`` at the end)."""
        if not self._queue:
            self._wakeup.clear()
            if self._ended:
                raise StopAsyncIteration
            return None
        item = self._queue.popleft()
        if item is _END:
            self._queue.appendleft(_END)
            raise StopAsyncIteration
        self.received += 1
        assert isinstance(item, Packet)
        return item

    def __aiter__(self) -> AsyncIterator[Packet]:
        return self

    async def __anext__(self) -> Packet:
        while True:
            packet = self.get_nowait()
            if packet is not None:
                return packet
            if self._closed:
                raise StopAsyncIteration
            await self._wakeup.wait()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        self.hub._remove_reader(self)

    async def __aenter__(self) -> Reader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class PathHub:
    """All paths of this process; ``runtime.hub``."""

    def __init__(
        self,
        status: StatusSink | None,
        *,
        idle_timeout: float = 5.0,
        connect_timeout: float = 15.0,
        max_readers_per_path: int = 200,
        gop_cache_packets: int = DEFAULT_GOP_CACHE_PACKETS,
        gop_replay_packets: int = DEFAULT_GOP_REPLAY_PACKETS,
        publisher_takeover: bool = True,
        keyframe_warning_seconds: float = 10.0,
    ) -> None:
        self._sink = status
        self.publisher_takeover = publisher_takeover
        self.keyframe_warning_seconds = keyframe_warning_seconds
        self.idle_timeout = idle_timeout
        self.connect_timeout = max(connect_timeout, idle_timeout)
        self.max_readers_per_path = max_readers_per_path
        self.gop_cache_packets = gop_cache_packets
        self.gop_replay_packets = gop_replay_packets
        self._publishers: dict[str, Publisher] = {}
        self._waiting: dict[str, set[Reader]] = {}
        self._status_queue: asyncio.Queue[tuple[str, SourceStatus, str | None, asyncio.Future[None]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<PathHub publishers={len(self._publishers)}>"

    # --- lifecycle ---------------------------------------------------------------

    def _ensure_tasks(self) -> None:
        if self._tasks:
            return
        self._status_queue = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._status_worker(), name="trax-hub-status"),
            asyncio.create_task(self._watchdog(), name="trax-hub-watchdog"),
        ]

    async def close(self) -> None:
        """End every publisher (their Sources go idle) and stop the hub's tasks."""
        for pub in list(self._publishers.values()):
            await pub.close()
        # publishers being ended by the watchdog or a takeover: let them finish (their close callbacks)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await asyncio.gather(*self._closing, return_exceptions=True)
        for readers in list(self._waiting.values()):
            for r in list(readers):
                r._end()
        self._waiting.clear()
        if self._status_queue is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self._status_queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._status_queue = None

    # --- publishers -----------------------------------------------------------------

    async def open_publisher(
        self, path: str, protocol: str, tracks: Sequence[Track], *, takeover: bool = False
    ) -> Publisher:
        """Claim ``path``; the Source goes ``connecting``.

        ``Conflict`` when it already has a publisher, unless ``takeover`` (an
        encoder's protocol, already authorised for the path) is asked, the hub
        allows it (``publisher_takeover``) and the current publisher is one too:
        then the current one is closed and its readers move to the new one.
        """
        self._ensure_tasks()
        old = self._publishers.get(path)
        if old is not None and not self.can_take_over(path, takeover=takeover):
            raise Conflict("This stream path already has a publisher.")
        pub = Publisher(self, path, protocol, tracks, replaceable=takeover)
        self._publishers[path] = pub
        if old is not None:
            log.info("%s: a new %s publisher takes over from the %s one", path, protocol, old.protocol)
            old._hand_over(pub)
            task = asyncio.create_task(old.close(TAKEOVER_REASON), name=f"trax-hub-takeover-{path}")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        await self._status(path, SourceStatus.CONNECTING)
        if pub.closed:  # ended while the status was written
            return pub
        for reader in self._waiting.pop(path, set()):
            pub._attach(reader)
        return pub

    def publisher(self, path: str) -> Publisher | None:
        return self._publishers.get(path)

    def can_take_over(self, path: str, *, takeover: bool = True) -> bool:
        """Whether a new publisher asking for ``takeover`` may open ``path`` now (free, or replaceable)."""
        old = self._publishers.get(path)
        return old is None or (takeover and self.publisher_takeover and old.replaceable)

    def publishers(self) -> list[Publisher]:
        return list(self._publishers.values())

    def _release(self, pub: Publisher) -> None:
        if self._publishers.get(pub.path) is pub:
            del self._publishers[pub.path]

    # --- readers ------------------------------------------------------------------------

    def open_reader(self, path: str, max_queue: int = DEFAULT_MAX_QUEUE) -> Reader:
        """A reader of ``path`` (waits for a publisher if none yet). ``Conflict`` past the reader limit."""
        pub = self._publishers.get(path)
        count = pub.readers if pub is not None else len(self._waiting.get(path, ()))
        if count >= self.max_readers_per_path:
            raise Conflict("This stream path has too many readers.")
        reader = Reader(self, path, max(1, max_queue))
        if pub is not None and not pub.closed:
            pub._attach(reader)
        else:
            self._waiting.setdefault(path, set()).add(reader)
        return reader

    def _remove_reader(self, reader: Reader) -> None:
        if reader.publisher is not None:
            reader.publisher._detach(reader)
        waiting = self._waiting.get(reader.path)
        if waiting is not None:
            waiting.discard(reader)
            if not waiting:
                del self._waiting[reader.path]

    # --- status and watchdog ----------------------------------------------------------------

    def _status_done(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def _status(self, path: str, status: SourceStatus, reason: str | None = None) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._sink is None or self._status_queue is None:
            fut.set_result(None)
            return fut
        self._status_queue.put_nowait((path, status, reason, fut))
        return fut

    async def _status_worker(self) -> None:
        assert self._status_queue is not None
        queue = self._status_queue
        while True:
            path, status, reason, fut = await queue.get()
            try:
                if self._sink is not None:
                    await self._sink.set_status(path, status, reason)
            except Exception:
                log.exception("recording %s status %s failed", path, status.value)
            finally:
                if not fut.done():
                    fut.set_result(None)
                queue.task_done()

    async def _watchdog(self) -> None:
        interval = max(0.05, min(1.0, self.idle_timeout / 4, self.keyframe_warning_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for pub in list(self._publishers.values()):
                pub.check_keyframes(now, self.keyframe_warning_seconds)
                # before its first packet a publisher may still be connecting (ICE, DTLS, an encoder warming up)
                limit = self.idle_timeout if pub.packets else self.connect_timeout
                if now - pub.last_packet_at > limit:
                    log.info(
                        "%s: no media from its %s publisher for %.1f s; ending it",
                        pub.path,
                        pub.protocol,
                        now - pub.last_packet_at,
                    )
                    # a silent publisher is gone, not failed: the Source goes idle
                    task = asyncio.create_task(pub.close(), name=f"trax-hub-idle-{pub.path}")
                    self._closing.add(task)
                    task.add_done_callback(self._closing.discard)


def _comparable(tracks: Sequence[Track]) -> list[tuple[object, ...]]:
    """What a reader's muxer was built for; video parameter sets travel in-band, so they may change."""
    return [
        (t.index, t.kind, t.codec, t.time_base, t.sample_rate, t.channels, t.extradata if t.kind == "audio" else None)
        for t in tracks
    ]
