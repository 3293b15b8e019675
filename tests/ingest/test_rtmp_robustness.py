"""Hostile clients cost only their own connection: a parallel real publisher loses nothing, no task leaks."""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

import pytest

from tests.ingest.rtmp.support import RawClient, count_hub_packets, new_source, port, publish_cmd, rtmp_runtime, run
from tests.support.tools import require_tool
from trax.ingest.rtmp import amf0

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

FPS = 25


async def random_bytes(p: int) -> bool:
    c = await RawClient.open(p)
    c.writer.write(b"\x03" + os.urandom(1536 + 1536 + 65536))  # a valid C0, then noise where chunks belong
    return await c.closed_by_peer()


async def wrong_version(p: int) -> bool:
    c = await RawClient.open(p)
    c.writer.write(os.urandom(4096).replace(b"\x03", b"\x07"))
    return await c.closed_by_peer()


async def truncated_handshake(p: int) -> bool:
    c = await RawClient.open(p)
    c.writer.write(b"\x03" + bytes(700))  # then silence: the handshake timeout ends it
    return await c.closed_by_peer()


async def huge_chunk_size(p: int) -> bool:
    c = await RawClient.open(p)
    await c.handshake()
    c.send(1, struct.pack(">I", 100 * 1024 * 1024), csid=2)
    return await c.closed_by_peer()


async def huge_message(p: int) -> bool:
    c = await RawClient.open(p)
    await c.handshake()
    c.writer.write(bytes([0x06]) + b"\x00\x00\x00" + b"\xff\xff\xff" + b"\x09" + b"\x01\x00\x00\x00")  # 16 MB video
    return await c.closed_by_peer()


async def garbage_command(p: int) -> bool:
    c = await RawClient.open(p)
    await c.handshake()
    c.send(20, b"\x02\x00\x07connect" + b"\x0a\xff\xff\xff\xff")  # a strict array of 4 G elements
    return await c.closed_by_peer()


async def half_open(p: int, n: int) -> list[bool]:
    clients = [await RawClient.open(p) for _ in range(n)]
    for i, c in enumerate(clients):
        if i % 2:
            c.writer.write(b"\x03")  # some say hello and stall, others say nothing
    return list(await asyncio.gather(*(c.closed_by_peer() for c in clients)))


async def stalled_player(p: int, path: str, token: str) -> tuple[bool, list[object]]:
    """Plays the good publisher's path but never reads what it asked for."""
    c = await RawClient.open(p, rcvbuf=4096)
    await c.handshake()
    c.command("connect", {"app": "inputs", "tcUrl": f"rtmp://127.0.0.1:{p}/inputs"})
    await c.expect("_result")
    c.command("createStream", None)
    sid = (await c.expect("_result"))[3]
    c.command("play", None, f"{path.split('/', 1)[1]}?token={token}", stream_id=int(sid))
    status = await c.expect("onStatus")
    # from here on: read nothing; the server must drop us without slowing the publisher
    return await c.closed_by_peer(limit=60), status


async def test_hostile_clients_cost_only_their_connection(tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    # 57 unauthorised connections from one address at once: past the per-address cap, which
    # test_rtmp_preauth.py covers; here the listener's other defences are under test
    async with rtmp_runtime(
        tmp_path,
        handshake_timeout=1.0,
        write_timeout=1.0,
        max_message_size=1024 * 1024,
        max_unauthenticated_per_address=100,
    ) as rt:
        listener = rt.transports["rtmp"]
        p = port(rt)
        src, _ = await new_source(rt)
        pub = await rt.media_tokens.mint(path=src.path, action="publish")
        read = await rt.media_tokens.mint(path=src.path, action="read")
        url = f"rtmp://127.0.0.1:{p}/{src.path}?user=trax&pass={pub.token}"

        # warm-up publish so the hub's background tasks exist before the baseline is taken
        assert (await run(publish_cmd(ffmpeg, url, 0.5, realtime=False), 30))[0] == 0
        async with asyncio.timeout(10):
            while listener.sessions:  # type: ignore[attr-defined]  # noqa: ASYNC110 - state of the listener
                await asyncio.sleep(0.05)
        baseline = len(asyncio.all_tasks())

        seconds = 6
        counting = asyncio.create_task(count_hub_packets(rt, src.path, until_s=60))
        publishing = asyncio.create_task(run(publish_cmd(ffmpeg, url, seconds), 60))
        async with asyncio.timeout(10):
            while rt.hub.publisher(src.path) is None:  # noqa: ASYNC110 - state of the hub
                await asyncio.sleep(0.05)
        results = await asyncio.gather(
            random_bytes(p),
            wrong_version(p),
            truncated_handshake(p),
            huge_chunk_size(p),
            huge_message(p),
            garbage_command(p),
            half_open(p, 50),
            stalled_player(p, src.path, read.token),
        )
        *single, halfs, (player_dropped, player_status) = results
        assert all(single), single
        assert all(halfs), f"{halfs.count(False)} half-open connections were not closed"
        assert player_dropped and player_status[3]["code"] == "NetStream.Play.Reset"

        rc, err = await publishing
        assert rc == 0, err
        got = await counting
        assert got["video"] == seconds * FPS  # the good publisher lost nothing

        async with asyncio.timeout(10):
            while listener.sessions:  # type: ignore[attr-defined]  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == baseline


async def test_bad_client_error_paths_send_clean_refusals(tmp_path: Path) -> None:
    """Refusals a client can print: unknown app → Connect.Rejected; too many streams; bad stream name."""
    async with rtmp_runtime(tmp_path, max_streams=2) as rt:
        p = port(rt)
        c = await RawClient.open(p)
        await c.handshake()
        c.command("connect", {"app": "live", "tcUrl": f"rtmp://127.0.0.1:{p}/live"})
        reply = await c.expect("_error")
        assert reply[3]["code"] == "NetConnection.Connect.Rejected"
        assert await c.closed_by_peer()

        c = await RawClient.open(p)
        await c.handshake()
        c.command("connect", {"app": "inputs", "tcUrl": f"rtmp://127.0.0.1:{p}/inputs"})
        await c.expect("_result")
        c.command("createStream", None)
        c.command("createStream", None)
        c.command("createStream", None)
        replies = [await c.expect(n) for n in ("_result", "_result", "_error")]
        assert [r[3] for r in replies[:2]] == [1.0, 2.0]
        c.command("publish", None, "../../etc?token=x", "live", stream_id=1)
        status = await c.expect("onStatus")
        assert status[3]["code"] == "NetStream.Publish.BadName"
        assert await c.closed_by_peer()


async def test_tcurl_userinfo_credential(tmp_path: Path) -> None:
    """Clients that keep userinfo in tcUrl (``rtmp://trax:<jwt>@host/...``) publish without a query."""
    async with rtmp_runtime(tmp_path) as rt:
        p = port(rt)
        src, _ = await new_source(rt)
        tok = (await rt.media_tokens.mint(path=src.path, action="publish")).token
        for user, expected in (("trax", "NetStream.Publish.Start"), ("nobody", "NetStream.Publish.BadName")):
            c = await RawClient.open(p)
            await c.handshake()
            c.command("connect", {"app": "inputs", "tcUrl": f"rtmp://{user}:{tok}@127.0.0.1:{p}/inputs"})
            await c.expect("_result")
            c.command("createStream", None)
            await c.expect("_result")
            c.command("publish", None, src.path.split("/", 1)[1], "live", stream_id=1)
            status = await c.expect("onStatus")
            assert status[3]["code"] == expected
            c.close()


async def test_a_publisher_that_goes_silent_is_ended_by_the_watchdog(tmp_path: Path) -> None:
    """The hub's watchdog ends a path that gets no media; the RTMP connection behind it closes too."""
    from tests.ingest.test_rtmp_flv import IDR, PPS, SPS, avcc, video_tag
    from trax.ingest.rtmp.flv import avc_config

    async with rtmp_runtime(tmp_path, ingest_settings={"idle_timeout_seconds": 1.0}) as rt:
        p = port(rt)
        src, _ = await new_source(rt)
        tok = (await rt.media_tokens.mint(path=src.path, action="publish")).token
        seen: list[str] = []

        async def on_event(event: object) -> None:
            data = getattr(event, "data", {})
            if data.get("path") == src.path:
                seen.append(data["status"])

        rt.bus.subscribe(on_event)
        c = await RawClient.open(p)
        await c.handshake()
        c.command("connect", {"app": "inputs", "tcUrl": f"rtmp://127.0.0.1:{p}/inputs"})
        await c.expect("_result")
        c.command("createStream", None)
        await c.expect("_result")
        c.command("publish", None, f"{src.path.split('/', 1)[1]}?token={tok}", "live", stream_id=1)
        assert (await c.expect("onStatus"))[3]["code"] == "NetStream.Publish.Start"
        c.send(18, amf0.encode("@setDataFrame", "onMetaData", {"videocodecid": 7.0}), stream_id=1, csid=5)
        c.send(9, video_tag(True, 0, avc_config(SPS, PPS)), stream_id=1, csid=6)
        c.send(9, video_tag(True, 1, avcc(IDR)), stream_id=1, csid=6)
        # ... and then nothing more, with the connection left open
        assert await c.closed_by_peer(limit=15)
        async with asyncio.timeout(10):
            while seen[-1:] != ["idle"]:  # noqa: ASYNC110 - status events arrive from the hub
                await asyncio.sleep(0.05)
        assert seen == ["connecting", "live", "idle"]
