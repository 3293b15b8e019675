"""A platform destination (through a Connection) is pushed to where its platform plugin says: loopback, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.broadcast.feeds import colour_clip, playing
from tests.broadcast.receivers import ffmpeg_rtmp_listener, probe_video
from tests.conftest import memory_settings
from trax.domain.destinations import DestinationStatus
from trax.runtime import Runtime
from trax.services import Principal

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_loopback_platform_destination_reaches_its_ingest_url(tmp_path: Path) -> None:
    async with ffmpeg_rtmp_listener(tmp_path, key="platform-key-0001") as listener:
        base, key = listener.url.rsplit("/", 1)
        settings = memory_settings(tmp_path, platforms={"loopback": {"ingest_url": base, "stream_key": key}})
        async with Runtime(settings) as rt:  # type: ignore[arg-type]
            acct = await rt.services.accounts.create("acme")
            op = Principal.operator(acct.id)
            conn = await rt.services.connections.link(
                acct.id, platform="loopback", display_name="My channel", external_account_id="chan-1"
            )
            studio = await rt.services.studios.create(op, name="s")
            cam = await rt.services.sources.create(op, studio.id, name="cam", kind="rtmp")
            dst = await rt.services.destinations.create(
                op, studio.id, {"name": "channel", "platform": "loopback", "connectionId": conn.id}
            )
            async with playing(rt.hub, cam.path, colour_clip("red", seconds=1.0)):
                await rt.services.studios.go_live(op, studio.id)
                for _ in range(300):  # until the receiver accepted the publish (30 s at most)
                    if (await rt.services.destinations.get(op, studio.id, dst.id)).status is DestinationStatus.LIVE:
                        break
                    await asyncio.sleep(0.1)
                assert (await rt.services.destinations.get(op, studio.id, dst.id)).status is DestinationStatus.LIVE
                await asyncio.sleep(3)
                await rt.services.studios.go_offline(op, studio.id)
            after = await rt.services.destinations.get(op, studio.id, dst.id)
            assert after.status is DestinationStatus.IDLE
        await listener.wait(10)
    assert listener.output is not None
    frames, _ = probe_video(listener.output)
    assert frames >= 60


async def test_a_platform_without_an_ingest_address_is_a_destination_error(tmp_path: Path) -> None:
    async with Runtime(memory_settings(tmp_path)) as rt:  # type: ignore[arg-type]
        acct = await rt.services.accounts.create("acme")
        op = Principal.operator(acct.id)
        conn = await rt.services.connections.link(
            acct.id, platform="loopback", display_name="c", external_account_id="x"
        )
        studio = await rt.services.studios.create(op, name="s")
        dst = await rt.services.destinations.create(
            op, studio.id, {"name": "channel", "platform": "loopback", "connectionId": conn.id}
        )
        without = await rt.services.destinations.create(op, studio.id, {"name": "youtube", "platform": "youtube"})
        status, _ = await rt.services.studios.go_live(op, studio.id)
        assert status.status.value == "live"
        got = {d.id: d for d in (await rt.services.studios.stream_status(op, studio.id)).destinations}
        assert got[dst.id].status is DestinationStatus.ERROR and got[dst.id].error_code == "platform_error"
        assert got[without.id].error_code in ("platform_unsupported", "no_connection")
        await rt.services.studios.go_offline(op, studio.id)
