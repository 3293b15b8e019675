"""Garbage on the SRT port costs only itself: a parallel good publisher loses nothing, nothing leaks."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from tests.ingest.srt_support import (
    FRAMES,
    collect,
    decoded_frames,
    idle_reader,
    publish_cmd,
    require_srt,
    run,
    srt_env,
)
from trax.ingest.srt import libsrt

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HS_INDUCTION = 1
HS_CONCLUSION = 0xFFFFFFFF


def handshake(kind: int, *, version: int = 4, cookie: int = 0, socket_id: int = 1) -> bytes:
    """An SRT/UDT handshake control packet (16-byte header + 48-byte handshake body)."""
    header = struct.pack(">IIII", 0x80000000, 0, int(time.monotonic() * 1e6) & 0xFFFFFFFF, 0)
    body = struct.pack(
        ">IIIIIIII16s",
        version,
        2 if version == 4 else 0x4A17,  # UDT_DGRAM for v4 induction; the SRT magic for v5
        0x1234,
        1500,
        8192,
        kind,
        socket_id,
        cookie,
        socket.inet_aton("127.0.0.1") + b"\x00" * 12,
    )
    return header + body


def srt_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("trax-srt-conn")]


async def test_garbage_half_open_and_stalled_peers_cost_only_themselves(tmp_path: Path) -> None:
    require_srt()
    async with srt_env(tmp_path) as env:
        tasks_before = set(asyncio.all_tasks())
        token = await env.token("publish")
        read_token = await env.token("read")
        hub_side = asyncio.create_task(collect(env))
        stop_reader = threading.Event()
        reader = asyncio.create_task(
            asyncio.to_thread(idle_reader, env.port, f"read:{env.path}:trax:{read_token}", stop_reader)
        )
        publisher = asyncio.create_task(
            run(publish_cmd(env.url(f"publish:{env.path}:trax:{token}", linger="2")), limit=40)
        )

        def attack() -> int:
            """Random datagrams, truncated handshakes, bogus conclusions and 50 half-open inductions."""
            rng_sizes = [1, 4, 16, 17, 63, 64, 65, 200, 1316, 1500]
            answers = 0
            socks: list[socket.socket] = []
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as noise:
                    for i in range(400):
                        noise.sendto(os.urandom(rng_sizes[i % len(rng_sizes)]), ("127.0.0.1", env.port))
                    full = handshake(HS_INDUCTION)
                    for cut in (1, 8, 16, 20, 40, 63):
                        noise.sendto(full[:cut], ("127.0.0.1", env.port))
                    for i in range(20):
                        bogus = handshake(HS_CONCLUSION, version=5, cookie=0xDEAD0000 + i, socket_id=100 + i)
                        noise.sendto(bogus + os.urandom(i), ("127.0.0.1", env.port))
                for i in range(50):  # induction answered, conclusion never sent
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    s.settimeout(2.0)
                    socks.append(s)
                    s.sendto(handshake(HS_INDUCTION, socket_id=1000 + i), ("127.0.0.1", env.port))
                for s in socks:
                    try:
                        data, _ = s.recvfrom(2048)
                    except TimeoutError:
                        continue
                    answers += 1 if len(data) >= 64 else 0
            finally:
                for s in socks:
                    s.close()
            return answers

        answered = await asyncio.to_thread(attack)
        assert answered >= 1, "the listener answered no induction (was it alive?)"

        rc, err = await publisher
        assert rc == 0, err
        tracks, packets = await asyncio.wait_for(hub_side, 20)
        received = decoded_frames(tracks, packets)
        assert received.get("video", 0) >= FRAMES, received  # every frame, despite the noise
        assert received.get("audio", 0) > 0

        stop_reader.set()
        assert await asyncio.wait_for(reader, 40), "the stalled reader was refused"
        for _ in range(200):  # its connection thread ends once the publisher has left or the peer closes
            if not srt_threads() and env.transport.connections == 0:
                break
            await asyncio.sleep(0.05)
        assert srt_threads() == []
        assert env.transport.connections == 0
        assert env.runtime.hub.publisher(env.path) is None
        hub_tasks = {"trax-hub-status", "trax-hub-watchdog"}  # the hub's own, started with its first publisher

        def leaked() -> list[str]:
            return [t.get_name() for t in asyncio.all_tasks() - tasks_before if t.get_name() not in hub_tasks]

        for _ in range(100):
            if not leaked():
                break
            await asyncio.sleep(0.05)
        assert leaked() == []
    # stopping the transport ends the accept thread too
    assert not [t for t in threading.enumerate() if t.name.startswith("trax-srt")]


def garbage_publisher(port: int, streamid: str, messages: int) -> tuple[bool, int]:
    """An authenticated libsrt caller that sends random bytes instead of MPEG-TS: (accepted, messages sent)."""
    lib = libsrt.load()
    lib.startup()
    sock = lib.create_socket()
    sent = 0
    try:
        lib.set_int(sock, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
        lib.set_bytes(sock, libsrt.SRTO_STREAMID, streamid.encode())
        try:
            lib.connect(sock, "127.0.0.1", port)
        except libsrt.SrtError:
            return False, 0
        deadline = time.monotonic() + 20
        while sent < messages and time.monotonic() < deadline:
            try:
                lib.sendmsg(sock, os.urandom(1316))
            except libsrt.SrtError:
                break  # the server closed us
            sent += 1
            if sent % 50 == 0:
                time.sleep(0.01)
        # stay connected until the server gives up on us (bounded)
        while lib.state(sock) == libsrt.SRTS_CONNECTED and time.monotonic() < deadline:
            time.sleep(0.05)
        return True, sent
    finally:
        lib.close(sock)
        lib.cleanup()


async def test_an_authenticated_caller_sending_garbage_is_closed(tmp_path: Path) -> None:
    require_srt()
    async with srt_env(tmp_path) as env:
        token = await env.token("publish")
        accepted, sent = await asyncio.to_thread(garbage_publisher, env.port, f"publish:{env.path}:trax:{token}", 600)
        assert accepted and sent > 0
        for _ in range(200):
            if env.transport.connections == 0:
                break
            await asyncio.sleep(0.05)
        assert env.transport.connections == 0
        assert env.runtime.hub.publisher(env.path) is None
        assert env.statuses() == []  # no publisher was ever opened for it


async def test_a_killed_publisher_leaves_the_source_idle(tmp_path: Path) -> None:
    """kill -9: no SRT shutdown reaches the server; silence ends the publisher (peer idle / hub watchdog)."""
    require_srt()
    async with srt_env(tmp_path, peer_idle_timeout_ms=2000) as env:
        token = await env.token("publish")
        proc = await asyncio.create_subprocess_exec(
            *publish_cmd(env.url(f"publish:{env.path}:trax:{token}"), seconds=30),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            for _ in range(300):
                if env.statuses()[-1:] == ["live"]:
                    break
                await asyncio.sleep(0.05)
            assert env.statuses() == ["connecting", "live"]
        finally:
            proc.kill()
            await proc.wait()
        for _ in range(400):  # bounded: peer idle timeout 2 s, hub watchdog 5 s
            if env.statuses()[-1:] == ["idle"]:
                break
            await asyncio.sleep(0.05)
        assert env.statuses() == ["connecting", "live", "idle"]
        for _ in range(100):
            if not srt_threads():
                break
            await asyncio.sleep(0.05)
        assert srt_threads() == []
