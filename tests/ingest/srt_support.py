"""Shared pieces of the SRT tests: a runtime with the listener on a free UDP port, ffmpeg runs, frame counts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import memory_settings
from tests.support.tools import require, require_tool
from trax.domain.events import Event
from trax.ingest.media import Packet, Track
from trax.ingest.srt import libsrt
from trax.ingest.srt.listener import SrtTransport
from trax.ports import free_port
from trax.runtime import Runtime
from trax.services import Principal

FPS = 25
SECONDS = 4
FRAMES = FPS * SECONDS
AUDIO_FRAMES = SECONDS * 48000 // 1024


def require_srt() -> str:
    require(libsrt.available(), "libsrt 1.5 is not installed (Debian libsrt1.5-openssl)")
    return require_tool("ffmpeg", why="the SRT tests publish and read with a real encoder")


@dataclass
class SrtEnv:
    runtime: Runtime
    port: int
    path: str
    events: list[Event] = field(default_factory=list)

    @property
    def transport(self) -> SrtTransport:
        transport = self.runtime.transports["srt"]
        assert isinstance(transport, SrtTransport)
        return transport

    async def token(self, action: str = "publish", path: str | None = None, ttl: int | None = None) -> str:
        creds = await self.runtime.media_tokens.mint(
            path=path or self.path, action=action, audience="trax-ingest", ttl=ttl
        )
        return creds.token

    def url(self, streamid: str, **query: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        return f"srt://127.0.0.1:{self.port}?streamid={streamid}{extra}"

    def statuses(self) -> list[str]:
        return [
            e.data["status"]
            for e in self.events
            if e.type == "source.status_changed" and e.data.get("path") == self.path
        ]


@contextlib.asynccontextmanager
async def srt_env(
    tmp_path: Path, *, other_transports: dict[str, Any] | None = None, **srt_options: Any
) -> AsyncIterator[SrtEnv]:
    port = free_port(socket.SOCK_DGRAM)
    settings = memory_settings(
        tmp_path,
        ingest={
            "host": "127.0.0.1",
            "tokens": {"leeway_seconds": 0},
            "srt": {"enabled": True, "port": port, **srt_options},
            **(other_transports or {}),
        },
    )
    rt = Runtime(settings)  # type: ignore[arg-type]
    async with rt:
        await rt.start_transports()
        acct = await rt.services.accounts.create("acme")
        op = Principal.operator(acct.id)
        studio = await rt.services.studios.create(op, name="studio")
        source = await rt.services.sources.create(op, studio.id, name="cam", kind="srt")
        env = SrtEnv(rt, port, source.path)

        async def record(event: Event) -> None:
            env.events.append(event)

        unsubscribe = rt.bus.subscribe(record)
        try:
            yield env
        finally:
            unsubscribe()


def publish_cmd(url: str, seconds: int = SECONDS, size: str = "320x240") -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate={FPS}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "mpegts", url,
    ]  # fmt: skip


def read_cmd(url: str, out: Path) -> list[str]:
    quiet = ["-hide_banner", "-nostdin", "-loglevel", "error"]
    return ["ffmpeg", *quiet, "-y", "-i", url, "-c", "copy", "-f", "mpegts", str(out)]


async def run(cmd: list[str], limit: float = 30) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), limit)
    except BaseException:  # timed out or cancelled: never leave an encoder running
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, err.decode("utf-8", "replace")


async def collect(env: SrtEnv, path: str | None = None) -> tuple[tuple[Track, ...], list[Packet]]:
    """Everything the hub hands a reader of the path, from the publisher's arrival until it leaves."""
    packets: list[Packet] = []
    async with env.runtime.hub.open_reader(path or env.path, max_queue=100_000) as reader:
        tracks = await reader.tracks(wait=30)
        async for packet in reader:
            packets.append(packet)
    return tracks, packets


def decoded_frames(tracks: tuple[Track, ...], packets: list[Packet]) -> dict[str, int]:
    """Frames PyAV decodes from canonical packets, per track kind."""
    import av

    counts: dict[str, int] = {}
    for track in tracks:
        ctx = av.CodecContext.create(track.codec, "r")
        if track.extradata:
            ctx.extradata = track.extradata
        n = 0
        for p in packets:
            if p.track != track.index:
                continue
            try:
                n += len(ctx.decode(av.Packet(p.data)))
            except av.FFmpegError:
                continue
        with contextlib.suppress(av.FFmpegError):
            n += len(ctx.decode(None))
        counts[track.kind] = n
    return counts


def decoded_file_frames(path: Path) -> dict[str, int]:
    import av

    counts: dict[str, int] = {}
    if not path.exists() or path.stat().st_size == 0:
        return counts
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams):
            kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def idle_reader(port: int, streamid: str, stop: threading.Event, *, source: str | None = None) -> bool:
    """A libsrt caller (bound to ``source`` if given) that opens a path and then never reads until ``stop``.

    Returns whether the listener accepted it. Blocking: run it with ``asyncio.to_thread``.
    """
    lib = libsrt.load()
    lib.startup()
    sock = lib.create_socket()
    try:
        lib.set_int(sock, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
        lib.set_bytes(sock, libsrt.SRTO_STREAMID, streamid.encode())
        if source is not None:
            lib.bind(sock, source, 0)
        try:
            lib.connect(sock, "127.0.0.1", port)
        except libsrt.SrtError:
            return False
        stop.wait(30)
        return True
    finally:
        lib.close(sock)
        lib.cleanup()
