"""Shared helpers for the RTMP tests: a runtime with the listener on a free port, sources, ffmpeg."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import memory_settings
from trax.runtime import Runtime
from trax.services import Principal


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp / "cert.pem", tmp / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certfile, keyfile


@contextlib.asynccontextmanager
async def rtmp_runtime(
    tmp: Path,
    *,
    tls: bool = False,
    ingest_settings: dict[str, Any] | None = None,
    rtmps_options: dict[str, Any] | None = None,
    **rtmp_options: Any,
) -> AsyncIterator[Runtime]:
    ingest: dict[str, Any] = {"host": "127.0.0.1", "rtmp": {"enabled": True, "port": 0, **rtmp_options}}
    ingest.update(ingest_settings or {})
    ingest["tokens"] = {"leeway_seconds": 0}  # so a short-lived token really expires within a test
    if tls:
        certfile, keyfile = self_signed(tmp)
        ingest["rtmps"] = {"enabled": True, "port": 0, "certfile": str(certfile), "keyfile": str(keyfile)}
        ingest["rtmps"].update(rtmps_options or {})
    rt = Runtime(memory_settings(tmp, ingest=ingest))  # type: ignore[arg-type]
    async with rt:
        await rt.start_transports()
        try:
            yield rt
        finally:
            for t in rt.transports.values():
                await t.stop()


def port(rt: Runtime, name: str = "rtmp") -> int:
    return int(rt.transports[name].port)  # type: ignore[attr-defined]


@dataclass
class Studio:
    operator: Principal
    studio_id: str


async def new_source(rt: Runtime, kind: str = "rtmp") -> Any:
    acct = await rt.services.accounts.create(f"acme-{uuid.uuid4().hex[:8]}")
    op = Principal.operator(acct.id)
    studio = await rt.services.studios.create(op, name="s")
    return await rt.services.sources.create(op, studio.id, name="cam", kind=kind), op


FFMPEG_SRC = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"]
FFMPEG_SRC += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
FFMPEG_ENC = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p"]
FFMPEG_ENC += ["-c:a", "aac", "-b:a", "64k"]


def publish_cmd(ffmpeg: str, url: str, seconds: float, *, realtime: bool = True) -> list[str]:
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin"]
    if realtime:
        cmd.append("-re")
    return [*cmd, *FFMPEG_SRC, "-t", str(seconds), *FFMPEG_ENC, "-f", "flv", url]


async def run(cmd: list[str], limit: float) -> tuple[int, str]:
    """Run a client to completion (killed after ``limit`` seconds): (exit code, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        async with asyncio.timeout(limit):
            _, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
        return -9, err.decode(errors="replace")
    finally:
        if proc.returncode is None:  # cancelled: never leave an encoder running
            proc.kill()
            await proc.wait()
    return int(proc.returncode or 0), err.decode(errors="replace")


async def count_hub_packets(rt: Runtime, path: str, *, until_s: float) -> dict[str, Any]:
    """Read ``path`` from the hub: packets per track kind, and the tracks (ends when the publisher leaves)."""
    counts = {"video": 0, "audio": 0, "keyframes": 0, "tracks": None, "video_data": []}
    async with asyncio.timeout(until_s):
        async with rt.hub.open_reader(path, max_queue=100_000) as reader:
            tracks = await reader.tracks()
            counts["tracks"] = tracks
            kinds = {t.index: t.kind for t in tracks}
            async for pkt in reader:
                kind = kinds[pkt.track]
                counts[kind] += 1
                if kind == "video":
                    counts["video_data"].append(pkt)
                    counts["keyframes"] += int(pkt.keyframe)
    return counts


def decode_h264(packets: list[Any]) -> int:
    """Frames PyAV decodes from canonical Annex B packets."""
    import av

    codec = av.CodecContext.create("h264", "r")
    frames = 0
    for p in packets:
        for _ in codec.decode(av.Packet(p.data)):
            frames += 1
    with contextlib.suppress(Exception):
        for _ in codec.decode(None):
            frames += 1
    return frames


class RawClient:
    """A bare RTMP client for hostile and edge-case tests (built on the tested chunk layer)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from trax.ingest.rtmp.chunks import ChunkReader

        self.reader, self.writer = reader, writer
        self.chunks = ChunkReader(reader)
        self.txn = 0

    @classmethod
    async def open(cls, port: int, *, rcvbuf: int | None = None) -> RawClient:
        import socket

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    async def handshake(self) -> None:
        import os

        self.writer.write(b"\x03" + os.urandom(1536))
        await self.reader.readexactly(1 + 1536 * 2)
        self.writer.write(os.urandom(1536))
        await self.writer.drain()

    def send(self, type_id: int, payload: bytes, *, stream_id: int = 0, csid: int = 3) -> None:
        from trax.ingest.rtmp.chunks import encode_message
        from trax.ingest.rtmp.messages import Message

        self.writer.write(encode_message(Message(type_id, stream_id, 0, payload), csid, 128))

    def command(self, name: str, *args: Any, stream_id: int = 0) -> None:
        from trax.ingest.rtmp import amf0

        self.txn += 1
        self.send(20, amf0.encode(name, self.txn, *args), stream_id=stream_id)

    async def expect(self, name: str, limit: float = 5.0) -> list[Any]:
        """The next command called ``name`` (others skipped)."""
        from trax.ingest.rtmp import amf0

        async with asyncio.timeout(limit):
            while True:
                msg = await self.chunks.read_message()
                if msg.type_id == 20:
                    values = amf0.decode_all(msg.payload)
                    if values and values[0] == name:
                        return values

    async def closed_by_peer(self, limit: float = 10.0) -> bool:
        """True when the server ends the connection within ``limit`` seconds."""
        try:
            async with asyncio.timeout(limit):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    def close(self) -> None:
        self.writer.transport.abort()
