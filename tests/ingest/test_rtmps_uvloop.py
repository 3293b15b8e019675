"""RTMPS under uvloop (what ``trax serve`` runs on) with clients that send their TLS ClientHello at once.

``StreamWriter.start_tls`` on an accepted plain stream garbles such handshakes under uvloop (librtmp failed
19 times in 20); the listener accepts RTMPS sockets itself and lets the loop do TLS from the first byte.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.ingest.rtmp.support import new_source, port, rtmp_runtime
from tests.support.tools import require_tool

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    pytest.importorskip("uvloop")
    return ("asyncio", {"use_uvloop": True})


async def test_librtmp_clients_complete_the_tls_handshake_under_uvloop(tmp_path: Path) -> None:
    rtmpdump = require_tool("rtmpdump")
    async with rtmp_runtime(tmp_path, tls=True) as rt:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        src, _ = await new_source(rt)
        read = (await rt.media_tokens.mint(path=src.path, action="read")).token
        app, name = src.path.split("/", 1)
        url = f"rtmps://127.0.0.1:{port(rt, 'rtmps')}/{app}"

        async def play() -> str:
            proc = await asyncio.create_subprocess_exec(
                rtmpdump, "--live", "-r", url, "-a", app, "-y", f"{name}?user=trax&pass={read}",
                "-o", "/dev/null", "-m", "2",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(proc.communicate(), 30)
            return err.decode(errors="replace")

        outputs = await asyncio.gather(*(play() for _ in range(8)))
    failed = [out for out in outputs if "TLS_Connect failed" in out or "Handshake failed" in out]
    assert not failed, failed[0]
    assert all("Connected" in out for out in outputs), outputs[0]
