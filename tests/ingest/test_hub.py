"""The path hub: one publisher per path, fan-out, GOP cache, slow readers, status and the watchdog."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any

import pytest

from trax.domain.errors import Conflict
from trax.domain.sources import SourceStatus
from trax.ingest.hub import PathHub
from trax.ingest.media import Packet, Track
from trax.runtime import Runtime
from trax.services import Principal

pytestmark = pytest.mark.anyio

VIDEO = Track(0, "video", "h264", Fraction(1, 90000))
AUDIO = Track(1, "audio", "opus", Fraction(1, 48000))


def frame(n: int, key: bool = False) -> Packet:
    return Packet(0, bytes([n % 256]) * 10, n * 3000, n * 3000, key)


class Sink:
    def __init__(self) -> None:
        self.seen: list[tuple[str, SourceStatus, str | None]] = []

    async def set_status(self, path: str, status: SourceStatus, reason: str | None = None) -> Any:
        self.seen.append((path, status, reason))


async def drain(reader: Any) -> list[Packet]:
    out = []
    while (p := reader.get_nowait()) is not None:
        out.append(p)
    return out


async def test_one_publisher_per_path() -> None:
    hub = PathHub(Sink())
    pub = await hub.open_publisher("p", "test", [VIDEO])
    with pytest.raises(Conflict):
        await hub.open_publisher("p", "other", [VIDEO])
    await hub.open_publisher("q", "test", [VIDEO])  # another path is free
    await pub.close()
    again = await hub.open_publisher("p", "test", [VIDEO])  # free again once it left
    assert again is not pub
    await hub.close()


async def test_fan_out_and_end_of_stream() -> None:
    hub = PathHub(Sink())
    pub = await hub.open_publisher("p", "test", [VIDEO, AUDIO])
    readers = [hub.open_reader("p") for _ in range(3)]
    pub.send(frame(0, key=True))
    pub.send(Packet(1, b"a", 0, 0, True))
    pub.send(frame(1))
    await pub.close()
    for r in readers:
        got = [p async for p in r]
        assert [(p.track, p.pts) for p in got] == [(0, 0), (1, 0), (0, 3000)]
        r.close()
    await hub.close()


async def test_late_reader_starts_at_the_last_keyframe() -> None:
    hub = PathHub(Sink())
    pub = await hub.open_publisher("p", "test", [VIDEO])
    for n in range(10):
        pub.send(frame(n, key=n in (0, 6)))
    async with hub.open_reader("p") as r:
        assert await r.tracks() == (VIDEO,)
        got = await drain(r)
        assert [p.pts // 3000 for p in got] == [6, 7, 8, 9]
        assert got[0].keyframe
    await hub.close()


async def test_long_gop_is_not_replayed_when_a_keyframe_can_be_asked_for() -> None:
    hub = PathHub(Sink(), gop_replay_packets=5)
    pub = await hub.open_publisher("p", "test", [VIDEO])
    for n in range(10):
        pub.send(frame(n, key=n == 0))
    # no way to ask for a keyframe (e.g. RTMP): the whole GOP is replayed
    assert len(await drain(hub.open_reader("p"))) == 10
    asked: list[int] = []
    pub.on_keyframe_request = lambda: asked.append(1)
    r = hub.open_reader("p")
    assert await drain(r) == [] and asked == [1]
    pub.send(frame(10))
    pub.send(frame(11, key=True))
    assert [p.pts // 3000 for p in await drain(r)] == [11]
    await hub.close()


async def test_reader_waits_for_a_publisher() -> None:
    hub = PathHub(Sink())
    r = hub.open_reader("p")
    waiter = asyncio.create_task(r.tracks(wait=5))
    await asyncio.sleep(0)
    assert not waiter.done()
    pub = await hub.open_publisher("p", "test", [VIDEO])
    assert await waiter == (VIDEO,)
    pub.send(frame(0, key=True))
    assert (await r.__anext__()).keyframe
    r.close()
    await hub.close()


async def test_slow_reader_skips_to_next_keyframe_without_blocking_others() -> None:
    hub = PathHub(Sink())
    pub = await hub.open_publisher("p", "test", [VIDEO])
    asked: list[int] = []
    pub.on_keyframe_request = lambda: asked.append(1)
    slow = hub.open_reader("p", max_queue=4)
    fast = hub.open_reader("p", max_queue=1000)
    pub.send(frame(0, key=True))
    for n in range(1, 20):
        pub.send(frame(n))
    assert asked, "a reader that fell behind asks the publisher for a keyframe"
    assert len(await drain(fast)) == 20  # unaffected
    assert await drain(slow) == []  # everything stale was dropped
    assert slow.dropped > 0
    pub.send(frame(20, key=True))
    pub.send(frame(21))
    assert [p.pts // 3000 for p in await drain(slow)] == [20, 21]
    await hub.close()


async def test_new_reader_without_cached_keyframe_asks_for_one() -> None:
    hub = PathHub(Sink())
    pub = await hub.open_publisher("p", "test", [VIDEO])
    asked: list[int] = []
    pub.on_keyframe_request = lambda: asked.append(1)
    pub.send(frame(0))  # no keyframe yet
    r = hub.open_reader("p")
    assert asked == [1]
    pub.send(frame(1))
    pub.send(frame(2, key=True))
    assert [p.pts // 3000 for p in await drain(r)] == [2]
    await hub.close()


async def test_status_sequence_and_error_reason() -> None:
    sink = Sink()
    hub = PathHub(sink)
    pub = await hub.open_publisher("p", "test", [VIDEO])
    pub.send(frame(0, key=True))
    pub.send(frame(1))
    await pub.close()
    pub2 = await hub.open_publisher("p", "test", [VIDEO])
    await pub2.close("decoder exploded")
    assert [(s, r) for _, s, r in sink.seen] == [
        (SourceStatus.CONNECTING, None),
        (SourceStatus.LIVE, None),
        (SourceStatus.IDLE, None),
        (SourceStatus.CONNECTING, None),
        (SourceStatus.ERROR, "decoder exploded"),
    ]
    await hub.close()


async def test_watchdog_ends_a_silent_publisher() -> None:
    sink = Sink()
    hub = PathHub(sink, idle_timeout=0.2)
    pub = await hub.open_publisher("p", "test", [VIDEO])
    ended: list[str | None] = []
    pub.on_close(ended.append)
    r = hub.open_reader("p")
    pub.send(frame(0, key=True))
    async with asyncio.timeout(10):
        await pub.wait_closed()
        got = [p async for p in r]
    assert len(got) == 1 and ended == [None]
    assert hub.publisher("p") is None
    assert sink.seen[-1][1] is SourceStatus.IDLE
    await hub.close()


async def test_a_publisher_that_never_sends_gets_the_longer_connect_timeout() -> None:
    hub = PathHub(Sink(), idle_timeout=0.1, connect_timeout=60)
    quiet = await hub.open_publisher("quiet", "test", [VIDEO])
    talker = await hub.open_publisher("talker", "test", [VIDEO])
    talker.send(frame(0, key=True))
    async with asyncio.timeout(10):
        await talker.wait_closed()
    assert not quiet.closed  # still inside its connect grace
    await hub.close()
    hub = PathHub(Sink(), idle_timeout=0.05, connect_timeout=0.2)
    quiet = await hub.open_publisher("quiet", "test", [VIDEO])
    async with asyncio.timeout(10):
        await quiet.wait_closed()
    await hub.close()


async def test_reader_limit() -> None:
    hub = PathHub(Sink(), max_readers_per_path=2)
    await hub.open_publisher("p", "test", [VIDEO])
    a = hub.open_reader("p")
    hub.open_reader("p")
    with pytest.raises(Conflict):
        hub.open_reader("p")
    a.close()
    hub.open_reader("p")
    await hub.close()


async def test_runtime_hub_drives_source_status_and_events(runtime: Runtime, operator: Principal) -> None:
    studio = await runtime.services.studios.create(operator, name="s")
    src = await runtime.services.sources.create(operator, studio.id, name="cam", kind="srt")
    events: list[Any] = []

    async def on_event(e: Any) -> None:
        events.append(e)

    unsub = runtime.bus.subscribe(on_event)
    pub = await runtime.hub.open_publisher(src.path, "srt", [VIDEO])
    assert (await runtime.services.sources.get(operator, studio.id, src.id)).status is SourceStatus.CONNECTING
    pub.send(frame(0, key=True))
    await pub.close()
    unsub()
    changes = [e.data["status"] for e in events if e.type == "source.status_changed"]
    assert changes == ["connecting", "live", "idle"]
    assert (await runtime.services.sources.get(operator, studio.id, src.id)).status is SourceStatus.IDLE
