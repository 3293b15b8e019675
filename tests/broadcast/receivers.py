"""Real receivers for egress tests, each a throwaway process on 127.0.0.1 with a free port.

* :func:`nginx_rtmp` — nginx with libnginx-mod-rtmp, recording every published stream to ``<key>.flv``;
* :func:`ffmpeg_rtmp_listener` — ``ffmpeg -listen 1`` taking one RTMP (or RTMPS) publish into ``out.flv``;
* :func:`srt_listener` — ``srt-live-transmit`` in listener mode writing the TS it receives to ``out.ts``;
* :func:`probe_video` — frames and video dts of a recorded file (ffprobe).

Tools are found through ``require_tool`` (skip locally, fail under ``TRAX_REQUIRE_ALL=1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.tools import require, require_tool
from trax.ports import free_port

START_TIMEOUT = 10.0


@dataclass
class Receiver:
    """A running receiver: ``url`` to publish to, ``output`` (or ``recorded(key)``) to inspect afterwards."""

    url: str
    port: int
    process: asyncio.subprocess.Process
    output: Path | None = None
    record_dir: Path | None = None
    log: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def recorded(self, key: str) -> Path:
        """nginx-rtmp's recording of stream ``key`` (``record_unique off``: one file per key)."""
        assert self.record_dir is not None
        return self.record_dir / f"{key}.flv"

    async def wait(self, within: float = 10.0) -> int | None:
        """Wait for the process to exit by itself (e.g. ffmpeg after its publisher left); its return code."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                return await self.process.wait()
        return None


async def _wait_port(port: int, proc: asyncio.subprocess.Process, *, udp: bool = False) -> None:
    """Until something listens on ``port`` (TCP connect works / the UDP port is taken)."""
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"receiver exited early with {proc.returncode}")
            if udp:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    try:
                        s.bind(("127.0.0.1", port))
                    except OSError:
                        return
            else:
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    pass
                else:
                    w.close()
                    return
            await asyncio.sleep(0.05)


async def _wait_listening_tcp(port: int, proc: asyncio.subprocess.Process) -> None:
    """Until a TCP port is listening, without connecting (ffmpeg's listener accepts exactly one connection)."""
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"receiver exited early with {proc.returncode}")
            table = await asyncio.to_thread(Path("/proc/net/tcp").read_text)
            if f":{port:04X} 00000000:0000 0A" in table:
                return
            await asyncio.sleep(0.05)


async def _end(proc: asyncio.subprocess.Process, *, grace: float = 5.0) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _nginx_module() -> str:
    require_tool("dpkg", why="finding libnginx-mod-rtmp")
    out = subprocess.run(["dpkg", "-L", "libnginx-mod-rtmp"], capture_output=True, text=True, check=False).stdout
    module = next((line for line in out.splitlines() if line.endswith("ngx_rtmp_module.so")), None)
    require(module is not None, "libnginx-mod-rtmp is not installed")
    assert module is not None
    return module


@contextlib.asynccontextmanager
async def nginx_rtmp(tmp_path: Path) -> AsyncIterator[Receiver]:
    """nginx-rtmp on a free port; ``.url`` is ``rtmp://127.0.0.1:PORT/live``; ``.recorded(key)`` its recording."""
    nginx = require_tool("nginx")
    module = _nginx_module()
    base = tmp_path / f"nginx-{free_port()}"
    records = base / "records"
    for d in (base, records, base / "tmp"):
        d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = base / "nginx.conf"
    conf.write_text(
        f"""
load_module {module};
daemon off;
master_process off;
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
            record all;
            record_path {records};
            record_unique off;
        }}
    }}
}}
"""
    )
    proc = await asyncio.create_subprocess_exec(
        nginx, "-p", str(base), "-c", str(conf), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await _wait_port(port, proc)
        yield Receiver(f"rtmp://127.0.0.1:{port}/live", port, proc, record_dir=records, log=base / "error.log")
    finally:
        # QUIT lets nginx-rtmp finish its recordings; TERM is the fallback inside _end
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(3)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await proc.wait()
        await _end(proc)


@contextlib.asynccontextmanager
async def ffmpeg_rtmp_listener(
    tmp_path: Path, *, tls: bool = False, key: str = "key", port: int | None = None
) -> AsyncIterator[Receiver]:
    """``ffmpeg -listen 1`` for one publish to ``rtmp(s)://127.0.0.1:PORT/live/<key>``, copied into ``out.flv``.

    ``.url`` is the full publish URL (key included); ``port`` pins the port (to start a receiver where
    an egress is already retrying). FFmpeg cannot listen on ``rtmps`` ("rtmp_listen not available
    for rtmps"), so with ``tls`` an in-process TLS terminator with a self-signed certificate sits on
    ``.port`` in front of the plain listener (publish with ``tls_verify=False``).
    """
    ffmpeg = require_tool("ffmpeg")
    port = port or free_port()
    inner = free_port() if tls else port
    base = tmp_path / f"ffmpeg-{port}"
    base.mkdir(parents=True, exist_ok=True)
    out = base / "out.flv"
    url = f"{'rtmps' if tls else 'rtmp'}://127.0.0.1:{port}/live/{key}"
    args = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "info"]
    args += ["-listen", "1", "-i", f"rtmp://127.0.0.1:{inner}/live/{key}", "-c", "copy", "-f", "flv", str(out)]
    log = base / "ffmpeg.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.DEVNULL, stderr=err)
    async with contextlib.AsyncExitStack() as stack:
        try:
            await _wait_listening_tcp(inner, proc)
            if tls:
                await stack.enter_async_context(_tls_terminator(base, port, inner))
            yield Receiver(url, port, proc, output=out, log=log)
        finally:
            # a publisher that closed cleanly lets ffmpeg finish the file on its own
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await proc.wait()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)  # ffmpeg writes its trailer
            await _end(proc)


@contextlib.asynccontextmanager
async def _tls_terminator(base: Path, port: int, inner: int) -> AsyncIterator[None]:
    """Accept TLS on ``port`` and relay the plaintext to ``127.0.0.1:inner``."""
    from tests.ingest.rtmp.support import self_signed

    cert, keyfile = self_signed(base)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, keyfile)
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            w.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ir, iw = await asyncio.open_connection("127.0.0.1", inner)
        except OSError:
            w.close()
            return
        for t in (asyncio.create_task(pipe(r, iw)), asyncio.create_task(pipe(ir, w))):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)
    try:
        yield
    finally:
        server.close()
        # let the relay deliver the publisher's goodbye before it is cut
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            t.cancel()


@contextlib.asynccontextmanager
async def srt_listener(tmp_path: Path, *, passphrase: str | None = None) -> AsyncIterator[Receiver]:
    """``srt-live-transmit`` listening on ``srt://127.0.0.1:PORT``, writing what it receives to ``out.ts``."""
    slt = require_tool("srt-live-transmit")
    port = free_port(socket.SOCK_DGRAM)
    base = tmp_path / f"srt-{port}"
    base.mkdir(parents=True, exist_ok=True)
    out = base / "out.ts"
    query = "mode=listener"
    if passphrase:
        query += f"&passphrase={passphrase}&pbkeylen=16"
    log = base / "slt.log"
    with out.open("wb") as sink, log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            slt, "-q", f"srt://127.0.0.1:{port}?{query}", "file://con", stdout=sink, stderr=err
        )
    try:
        await _wait_port(port, proc, udp=True)
        yield Receiver(f"srt://127.0.0.1:{port}", port, proc, output=out, log=log)
    finally:
        await _end(proc)


def probe_video(file: Path) -> tuple[int, list[float]]:
    """(video frames, video dts in seconds) of ``file``; ``(0, [])`` when it has no readable video."""
    ffprobe = require_tool("ffprobe")
    if not file.exists() or file.stat().st_size == 0:
        return 0, []
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=dts_time",
            "-of",
            "json",
            str(file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    packets = json.loads(out or "{}").get("packets", [])
    dts = [float(p["dts_time"]) for p in packets if p.get("dts_time") not in (None, "N/A")]
    return len(packets), dts


def probe_streams(file: Path) -> list[str]:
    """Codec names of the streams ffprobe finds in ``file``."""
    ffprobe = require_tool("ffprobe")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    return [s.get("codec_name", "") for s in json.loads(out or "{}").get("streams", [])]
