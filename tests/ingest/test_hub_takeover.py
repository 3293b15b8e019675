"""Publisher takeover and the missing-keyframe warning, at the hub."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.ingest.test_hub import AUDIO, VIDEO, Sink, drain, frame
from trax.domain.errors import Conflict
from trax.domain.sources import SourceStatus
from trax.ingest.hub import NO_KEYFRAMES_REASON, TAKEOVER_REASON, PathHub
from trax.ingest.media import Packet

pytestmark = pytest.mark.anyio


async def test_a_new_protocol_publisher_takes_over_and_readers_stay() -> None:
    hub = PathHub(Sink())
    old = await hub.open_publisher("p", "srt", [VIDEO], takeover=True)
    reasons: list[str | None] = []
    old.on_close(reasons.append)
    reader = hub.open_reader("p")
    await reader.tracks(wait=1)
    for n in range(5):
        old.send(frame(n, key=n == 0))
    assert len(await drain(reader)) == 5
    new = await hub.open_publisher("p", "rtmp", [VIDEO], takeover=True)
    old.send(frame(5, key=True))  # still sending while it is being closed: nobody gets it
    await asyncio.sleep(0)  # the old one's close runs as a task
    await old.wait_closed()
    assert reasons == [TAKEOVER_REASON]
    assert hub.publisher("p") is new
    assert reader.publisher is new
    new.send(frame(0))  # not a keyframe: the reader waits for one
    new.send(frame(1, key=True))
    new.send(frame(2))
    got = await drain(reader)
    assert [p.keyframe for p in got] == [True, False]
    # the new publisher's clock restarted at 0: readers see it continue after the old one's last frame
    assert got[0].dts > 4 * 3000
    assert got[1].dts - got[0].dts == 3000
    await hub.close()


async def test_takeover_with_other_tracks_ends_the_readers() -> None:
    hub = PathHub(Sink())
    old = await hub.open_publisher("p", "srt", [VIDEO], takeover=True)
    reader = hub.open_reader("p")
    old.send(frame(0, key=True))
    await hub.open_publisher("p", "srt", [VIDEO, AUDIO], takeover=True)
    assert [p async for p in reader] == [frame(0, key=True)]  # its muxer knew one track: it starts again
    await hub.close()


async def test_takeover_off_or_internal_publishers_conflict() -> None:
    hub = PathHub(Sink(), publisher_takeover=False)
    await hub.open_publisher("p", "srt", [VIDEO], takeover=True)
    with pytest.raises(Conflict):
        await hub.open_publisher("p", "srt", [VIDEO], takeover=True)
    on = PathHub(Sink())
    await on.open_publisher("q", "program", [VIDEO])  # not an encoder's: never replaced
    with pytest.raises(Conflict):
        await on.open_publisher("q", "srt", [VIDEO], takeover=True)
    await on.open_publisher("r", "srt", [VIDEO], takeover=True)
    with pytest.raises(Conflict):  # an internal publisher does not take over either
        await on.open_publisher("r", "program", [VIDEO])
    await hub.close()
    await on.close()


async def test_takeover_status_goes_connecting_then_live_never_idle() -> None:
    sink = Sink()
    hub = PathHub(sink)
    old = await hub.open_publisher("p", "srt", [VIDEO], takeover=True)
    old.send(frame(0, key=True))
    new = await hub.open_publisher("p", "srt", [VIDEO], takeover=True)
    await old.wait_closed()
    new.send(frame(0, key=True))
    await hub.close()
    statuses = [s for _, s, _ in sink.seen]
    assert statuses == [
        SourceStatus.CONNECTING,
        SourceStatus.LIVE,
        SourceStatus.CONNECTING,
        SourceStatus.LIVE,
        SourceStatus.IDLE,
    ]


async def test_video_without_keyframes_gets_a_reason_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trax.ingest.hub")
    sink = Sink()
    hub = PathHub(sink, keyframe_warning_seconds=0.3, idle_timeout=5)
    pub = await hub.open_publisher("p", "srt", [VIDEO, AUDIO], takeover=True)
    for n in range(30):  # 0.75 s of video, none of it a keyframe
        pub.send(frame(n))
        pub.send(Packet(1, b"a", n * 1600, n * 1600, True))
        await asyncio.sleep(0.025)
    assert (("p", SourceStatus.LIVE, NO_KEYFRAMES_REASON)) in sink.seen
    warnings = [r for r in caplog.records if "no video keyframe" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    pub.send(frame(30, key=True))  # a keyframe at last: the reason is cleared
    await asyncio.sleep(0.05)
    assert sink.seen[-1] == ("p", SourceStatus.LIVE, None)
    await hub.close()


async def test_a_webrtc_publisher_is_asked_for_a_keyframe_before_the_warning() -> None:
    sink = Sink()
    hub = PathHub(sink, keyframe_warning_seconds=0.3, idle_timeout=5)
    pub = await hub.open_publisher("p", "whip", [VIDEO], takeover=True)
    asked: list[float] = []
    pub.on_keyframe_request = lambda: asked.append(asyncio.get_running_loop().time())
    n = 0
    async with asyncio.timeout(5):
        while not asked:  # past the limit: asked first, not flagged yet
            pub.send(frame(n := n + 1))
            await asyncio.sleep(0.025)
    assert not pub.no_keyframes
    flagged_after = 0.0
    async with asyncio.timeout(5):
        while not pub.no_keyframes:  # it never answers: flagged once the limit has passed again
            pub.send(frame(n := n + 1))
            await asyncio.sleep(0.025)
            flagged_after = asyncio.get_running_loop().time() - asked[0]
    assert flagged_after >= 0.3
    await hub.close()


async def test_a_long_keyframe_interval_is_not_flagged() -> None:
    sink = Sink()
    hub = PathHub(sink, keyframe_warning_seconds=0.3, idle_timeout=5)
    pub = await hub.open_publisher("p", "rtmp", [VIDEO], takeover=True)
    for n in range(30):  # one keyframe, then 0.75 s of others (x264's 10 s GOP, scaled down)
        pub.send(frame(n, key=n == 0))
        await asyncio.sleep(0.025)
    await hub.close()
    assert all(reason is None for _, _, reason in sink.seen)


async def test_video_with_keyframes_gets_no_reason() -> None:
    sink = Sink()
    hub = PathHub(sink, keyframe_warning_seconds=0.3, idle_timeout=5)
    pub = await hub.open_publisher("p", "srt", [VIDEO], takeover=True)
    for n in range(30):
        pub.send(frame(n, key=n % 5 == 0))
        await asyncio.sleep(0.025)
    await hub.close()
    assert all(reason is None for _, _, reason in sink.seen)
