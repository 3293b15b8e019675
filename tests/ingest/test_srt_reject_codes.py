"""Each SRT refusal carries its own rejection code, read back by the caller's libsrt (as every encoder's is)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.ingest.srt_support import publish_cmd, require_srt, run, srt_env
from tests.support.tools import require_tool
from trax.ingest.srt import libsrt
from trax.services import Principal

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SRT_REJ_BADSECRET = 10
"""libsrt's own code for a wrong passphrase (srt.h SRT_REJ_BADSECRET)."""


def caller(port: int, streamid: str, passphrase: str | None = None) -> int:
    """Connect as libsrt's caller and return the rejection reason it reads (0: accepted)."""
    lib = libsrt.load()
    sock = lib.create_socket()
    try:
        lib.set_int(sock, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
        lib.set_bytes(sock, libsrt.SRTO_STREAMID, streamid.encode())
        if passphrase is not None:
            lib.set_bytes(sock, libsrt.SRTO_PASSPHRASE, passphrase.encode())
        try:
            lib.connect(sock, "127.0.0.1", port)
        except libsrt.SrtError:
            return lib.reject_reason(sock)
        return 0
    finally:
        lib.close(sock)


async def test_each_refusal_has_its_code(tmp_path: Path) -> None:
    require_srt()
    async with srt_env(tmp_path, other_transports={"publisher_takeover": False}) as env:
        rt = env.runtime
        mine = await rt.services.sources.by_path(env.path)
        assert mine is not None
        other = (
            await rt.services.sources.create(Principal.operator(mine.account_id), mine.studio_id, name="b", kind="srt")
        ).path
        good = await env.token("publish")
        expired = await env.token("publish", ttl=1)
        wrong_path = await env.token("publish", path=other)
        read_only = await env.token("read")
        await asyncio.sleep(2.1)  # the 1-second token expires (leeway 0 here)
        first = asyncio.create_task(run(publish_cmd(env.url(f"publish:{env.path}:trax:{good}"), seconds=4)))
        async with asyncio.timeout(15):
            while rt.hub.publisher(env.path) is None:  # noqa: ASYNC110 - polls the hub
                await asyncio.sleep(0.05)
        cases = {
            "malformed streamid": ("hello", libsrt.REJX_BAD_REQUEST),
            "garbage token": (f"publish:{env.path}:trax:not-a-token", libsrt.REJX_UNAUTHORIZED),
            "expired token": (f"publish:{env.path}:trax:{expired}", libsrt.REJX_UNAUTHORIZED),
            "token for another path": (f"publish:{env.path}:trax:{wrong_path}", libsrt.REJX_FORBIDDEN),
            "token for another action": (f"publish:{env.path}:trax:{read_only}", libsrt.REJX_FORBIDDEN),
            "not a stream path": (f"publish:nowhere:trax:{good}", libsrt.REJX_NOTFOUND),
            "bad mode": (f"#!::r={env.path},m=bogus,s={good}", libsrt.REJX_BAD_MODE),
            "path busy": (f"publish:{env.path}:trax:{good}", libsrt.REJX_CONFLICT),
        }
        seen = {name: await asyncio.to_thread(caller, env.port, sid) for name, (sid, _) in cases.items()}
        assert seen == {name: code for name, (_, code) in cases.items()}
        rc, err = await first
        assert rc == 0, err


async def test_wrong_passphrase_and_full_listener(tmp_path: Path) -> None:
    require_srt()
    slt = require_tool("srt-live-transmit")
    async with srt_env(tmp_path, passphrase="correct horse battery", max_connections=1) as env:
        token = await env.token("read")
        sid = f"read:{env.path}:trax:{token}"
        assert await asyncio.to_thread(caller, env.port, sid, "wrong horse battery") == SRT_REJ_BADSECRET
        # srt-live-transmit (another libsrt caller) holds the only connection slot, waiting for a publisher
        cmd = [slt, "-a:no", "-t:8", f"srt://127.0.0.1:{env.port}?streamid={sid}&passphrase=correct horse battery"]
        holder = asyncio.create_task(run([*cmd, "file://con"], limit=20))
        async with asyncio.timeout(10):
            while env.transport.connections == 0:  # noqa: ASYNC110 - polls the listener
                await asyncio.sleep(0.05)
        assert await asyncio.to_thread(caller, env.port, sid, "correct horse battery") == libsrt.REJX_OVERLOAD
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder


async def test_srt_live_transmit_is_refused_in_the_handshake(tmp_path: Path) -> None:
    require_srt()
    slt = require_tool("srt-live-transmit")
    async with srt_env(tmp_path) as env:
        read_only = await env.token("read")
        url = f"srt://127.0.0.1:{env.port}?streamid=publish:{env.path}:trax:{read_only}"
        _, err = await run([slt, "-a:no", "-t:5", url, "file://con"], limit=20)  # its exit code is 0 either way
        assert "REJECT" in err
        assert env.transport.refused == {libsrt.REJX_FORBIDDEN: 1}
        assert env.transport.connections == 0
