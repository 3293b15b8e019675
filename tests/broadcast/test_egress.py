"""Destination egress against real receivers (nginx-rtmp, ffmpeg, srt-live-transmit) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.broadcast.feeds import colour_clip, playing
from tests.broadcast.receivers import ffmpeg_rtmp_listener, nginx_rtmp, probe_streams, probe_video, srt_listener
from tests.support.tools import require
from trax.broadcast.egress import (
    Egress,
    EgressError,
    EgressTarget,
    RtmpFanout,
    backoff_delay,
    classify,
    egress_error,
)
from trax.ingest.hub import PathHub
from trax.ports import free_port

pytestmark = pytest.mark.anyio

KEY = "sk-SECRET-key-4242"
PASS = "pass-SECRET-0123456789"
STREAMID = "sid-SECRET-77"
SECRETS = (KEY, PASS, STREAMID, "hunter2", "alice")


# --- unit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "public"),
    [
        (EgressTarget("rtmp", f"rtmp://host/app/{KEY}"), "rtmp://host/app"),
        (EgressTarget("rtmp", f"rtmps://host:443/app/{KEY}?token=x"), "rtmps://host:443/app"),
        (EgressTarget("rtmp", f"rtmp://alice:hunter2@host:1935/a/b/{KEY}"), "rtmp://host:1935/a/b"),
        (EgressTarget("rtmp", "rtmp://host/live/"), "rtmp://host/live"),
        (EgressTarget("srt", "srt://alice:hunter2@10.0.0.1:9000?streamid=x", STREAMID, PASS), "srt://10.0.0.1:9000"),
    ],
)
def test_public_url_has_no_secrets(target: EgressTarget, public: str) -> None:
    assert target.public == public
    for text in (repr(target), str(target), target.public):
        assert not any(s in text for s in SECRETS)


@pytest.mark.parametrize(
    ("exc", "tls", "connected", "code"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), False, False, "connection_refused"),
        (OSError(errno.ECONNREFUSED, "refused"), False, False, "connection_refused"),
        (socket.gaierror(socket.EAI_NONAME, "no name"), False, False, "dns_failed"),
        (ssl.SSLCertVerificationError("bad cert"), True, False, "tls_failed"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), True, False, "tls_failed"),
        (TimeoutError(), False, False, "timeout"),
        (OSError(errno.ETIMEDOUT, "timed out"), False, True, "timeout"),
        (BrokenPipeError(errno.EPIPE, "pipe"), False, True, "stream_ended"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), False, True, "stream_ended"),
        (asyncio.IncompleteReadError(b"", 10), False, True, "stream_ended"),
        (EgressError("auth_rejected", "x"), False, True, "auth_rejected"),
    ],
)
def test_error_mapping(exc: BaseException, tls: bool, connected: bool, code: str) -> None:
    assert classify(exc, tls=tls, connected=connected) == code


def test_error_messages_name_only_the_public_url() -> None:
    target = EgressTarget("rtmp", f"rtmp://alice:hunter2@host/app/{KEY}")
    for code in ("connection_refused", "auth_rejected", "dns_failed", "tls_failed", "timeout", "stream_ended"):
        err = egress_error(code, target.public)
        assert err.code == code and "rtmp://host/app" in str(err)
        assert not any(s in str(err) for s in SECRETS)


def test_backoff_is_exponential_jittered_and_bounded() -> None:
    rng = random.Random(7)
    for attempt in range(40):
        for _ in range(50):
            d = backoff_delay(attempt, 1.0, 30.0, rng)
            assert 1.0 <= d <= 30.0
            assert d <= 2.0**attempt
    late = {round(backoff_delay(10, 1.0, 30.0, rng), 3) for _ in range(20)}
    assert len(late) > 1 and min(late) >= 15.0  # capped, and still jittered
    assert backoff_delay(0, 0.1, 0.2, rng) >= 0.1
    assert backoff_delay(5, 0.5, 0.1, rng) == 0.5  # a max below the min cannot undercut the min


# --- helpers -------------------------------------------------------------------------------------


class Statuses:
    """Records ``on_status`` calls with their times."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str | None, str | None]] = []
        self.changed = asyncio.Event()

    async def __call__(self, status: str, code: str | None, message: str | None) -> None:
        self.calls.append((time.monotonic(), status, code, message))
        self.changed.set()

    @property
    def statuses(self) -> list[str]:
        return [c[1] for c in self.calls]

    def first(self, status: str, code: str | None = None) -> float | None:
        return next((t for t, s, c, _ in self.calls if s == status and (code is None or c == code)), None)

    async def until(self, status: str, code: str | None = None, *, within: float = 20.0) -> float:
        async with asyncio.timeout(within):
            while (t := self.first(status, code)) is None:
                self.changed.clear()
                await self.changed.wait()
        return t


class VideoClock:
    """Times of the video packets the hub path carried (a reader of its own)."""

    def __init__(self, hub: PathHub, path: str) -> None:
        self.times: list[float] = []
        self._reader = hub.open_reader(path, 10_000)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        await self._reader.tracks()
        async for p in self._reader:
            if p.track == 0:
                self.times.append(time.monotonic())

    def between(self, start: float, end: float) -> int:
        return sum(1 for t in self.times if start <= t <= end)

    async def close(self) -> None:
        self._reader.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def program(seconds: float = 1.0) -> AsyncIterator[tuple[PathHub, VideoClock]]:
    hub = PathHub(None, idle_timeout=30)
    clip = colour_clip("red", seconds=seconds, gop=30)
    async with playing(hub, "program", clip):
        clock = VideoClock(hub, "program")
        try:
            yield hub, clock
        finally:
            await clock.close()
    await hub.close()


def egress(hub: PathHub, target: EgressTarget, statuses: Statuses, **kw: object) -> Egress:
    opts: dict[str, object] = {"connect_timeout": 3.0, "backoff_min": 0.2, "backoff_max": 1.0, "tls_verify": False}
    opts.update(kw)
    return Egress(hub, "program", target, statuses, label="t", **opts)  # type: ignore[arg-type]


def assert_received(file: Path, carried: int) -> None:
    frames, dts = probe_video(file)
    assert carried > 0
    assert frames >= 0.95 * carried, f"{frames} frames received of {carried} carried while live"
    assert all(b > a for a, b in itertools.pairwise(dts)), "video dts must increase strictly"


# --- RTMP ----------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_two_rtmp_receivers_at_once(tmp_path: Path) -> None:
    async with asyncio.timeout(60), program() as (hub, clock):
        async with nginx_rtmp(tmp_path) as nginx, ffmpeg_rtmp_listener(tmp_path, key=KEY) as listener:
            s1, s2 = Statuses(), Statuses()
            # one fanout, as a studio's destinations share it: each frame is converted and chunked once for both
            fanout = RtmpFanout()
            e1 = egress(hub, EgressTarget("rtmp", f"{nginx.url}/{KEY}"), s1, fanout=fanout)
            e2 = egress(hub, EgressTarget("rtmp", listener.url), s2, fanout=fanout)
            await e1.start()
            await e2.start()
            live1, live2 = await s1.until("live"), await s2.until("live")
            await asyncio.sleep(4)
            end = time.monotonic()
            await e1.stop()
            await e2.stop()
            assert s1.statuses == ["connecting", "live"] and s2.statuses == ["connecting", "live"]
            assert e1.sent > 0 and e2.sent > 0
            assert fanout.tags.hits > 0, "the second destination should reuse the first one's tag bodies"
            carried1, carried2 = clock.between(live1, end), clock.between(live2, end)
            assert await listener.wait(10) is not None, "ffmpeg should end by itself on the clean close"
        assert_received(nginx.recorded(KEY), carried1)
        assert_received(listener.output or Path(), carried2)
        assert probe_streams(listener.output or Path()) == ["h264", "aac"]


@pytest.mark.slow
async def test_rtmps_to_a_tls_receiver(tmp_path: Path) -> None:
    async with asyncio.timeout(60), program() as (hub, clock):
        async with ffmpeg_rtmp_listener(tmp_path, tls=True, key=KEY) as listener:
            # a self-signed certificate fails verification...
            strict = Statuses()
            e = egress(hub, EgressTarget("rtmp", listener.url), strict, tls_verify=True)
            await e.start()
            await strict.until("error", "tls_failed")
            await e.stop()
            # ...and is accepted with verification off
            s = Statuses()
            e = egress(hub, EgressTarget("rtmp", listener.url), s)
            await e.start()
            live = await s.until("live")
            await asyncio.sleep(3)
            end = time.monotonic()
            await e.stop()
            carried = clock.between(live, end)
        assert_received(listener.output or Path(), carried)


@pytest.mark.slow
async def test_refused_port_retries_then_goes_live_while_another_egress_keeps_going(tmp_path: Path) -> None:
    async with asyncio.timeout(90), program() as (hub, clock):
        async with nginx_rtmp(tmp_path) as nginx:
            healthy_s = Statuses()
            healthy = egress(hub, EgressTarget("rtmp", f"{nginx.url}/{KEY}"), healthy_s)
            await healthy.start()
            healthy_live = await healthy_s.until("live")

            port = free_port()
            s = Statuses()
            late = egress(hub, EgressTarget("rtmp", f"rtmp://127.0.0.1:{port}/live/{KEY}"), s)
            await late.start()
            await s.until("error", "connection_refused")
            async with asyncio.timeout(10):
                while late.reconnects < 2:  # noqa: ASYNC110 - polling a counter the egress keeps
                    await asyncio.sleep(0.05)
            assert s.statuses[:3] == ["connecting", "error", "connecting"]
            message = next(m for _, st, _, m in s.calls if st == "error")
            assert message is not None and f"rtmp://127.0.0.1:{port}/live" in message

            async with ffmpeg_rtmp_listener(tmp_path, key=KEY, port=port) as listener:
                live = await s.until("live")
                await asyncio.sleep(3)
                end = time.monotonic()
                await late.stop()
                carried = clock.between(live, end)
            await asyncio.sleep(1)
            healthy_end = time.monotonic()
            await healthy.stop()
            assert healthy_s.statuses == ["connecting", "live"]
        assert_received(listener.output or Path(), carried)
        assert_received(nginx.recorded(KEY), clock.between(healthy_live, healthy_end))


@pytest.mark.slow
async def test_a_receiver_that_never_reads_holds_up_nothing(tmp_path: Path) -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_ignore(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)  # keep the connection open, read nothing

    server = await asyncio.start_server(accept_and_ignore, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(60), program() as (hub, clock):
            async with nginx_rtmp(tmp_path) as nginx:
                good_s, stuck_s = Statuses(), Statuses()
                good = egress(hub, EgressTarget("rtmp", f"{nginx.url}/{KEY}"), good_s)
                stuck = egress(
                    hub, EgressTarget("rtmp", f"rtmp://127.0.0.1:{port}/live/{KEY}"), stuck_s, connect_timeout=1.5
                )
                await stuck.start()
                await good.start()
                good_live = await good_s.until("live")
                await stuck_s.until("error", "timeout")
                seen = len(clock.times)
                await asyncio.sleep(2)
                assert len(clock.times) > seen, "the hub path kept flowing"
                # stop() is bounded whatever the stuck receiver does (it is retrying against it by now)
                async with asyncio.timeout(5):
                    await stuck.stop()
                end = time.monotonic()
                await good.stop()
                assert good_s.statuses == ["connecting", "live"]
            assert_received(nginx.recorded(KEY), clock.between(good_live, end))
    finally:
        for w in held:
            w.close()
        server.close()


@pytest.mark.slow
async def test_rejections_and_unknown_hosts(tmp_path: Path) -> None:
    async with asyncio.timeout(60), program() as (hub, _clock):
        async with nginx_rtmp(tmp_path) as nginx:
            s = Statuses()
            # nginx-rtmp has no application "nope": the connect is refused at the RTMP level
            e = egress(hub, EgressTarget("rtmp", nginx.url.replace("/live", f"/nope/{KEY}")), s)
            await e.start()
            await s.until("error", "auth_rejected")
            await e.stop()
        s = Statuses()
        e = egress(hub, EgressTarget("rtmp", f"rtmp://no-such-host.invalid/live/{KEY}"), s)
        await e.start()
        await s.until("error", "dns_failed")
        await e.stop()


@pytest.mark.slow
async def test_no_secret_reaches_logs_or_statuses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with asyncio.timeout(60), program() as (hub, _clock):
        targets = [
            EgressTarget("rtmp", f"rtmp://alice:hunter2@127.0.0.1:{free_port()}/live/{KEY}"),
            EgressTarget("rtmp", f"rtmp://alice:hunter2@no-such-host.invalid/live/{KEY}"),
            EgressTarget("srt", f"srt://alice:hunter2@127.0.0.1:{free_port(socket.SOCK_DGRAM)}", STREAMID, PASS),
            EgressTarget("srt", "srt://127.0.0.1:9", STREAMID, "short"),  # libsrt refuses this passphrase
        ]
        async with nginx_rtmp(tmp_path) as nginx:
            targets.append(EgressTarget("rtmp", f"{nginx.url.replace('//', '//alice:hunter2@')}/{KEY}?t=hunter2"))
            started = []
            for t in targets:
                s = Statuses()
                e = egress(hub, t, s, connect_timeout=1.0)
                await e.start()
                started.append((e, s))
            await started[-1][1].until("live")
            for _e, s in started[:2]:
                await s.until("error")
            await asyncio.sleep(2)
            for e, s in started:
                await e.stop()
                texts += [repr(e), repr(e.target)]
                texts += [f"{st} {c} {m}" for _, st, c, m in s.calls]
    texts.append(caplog.text)
    texts += [str(r.args) for r in caplog.records]
    blob = "\n".join(texts)
    assert "error" in blob
    for secret in SECRETS:
        assert secret not in blob


# --- SRT -----------------------------------------------------------------------------------------


def _require_libsrt() -> None:
    from trax.ingest.srt import libsrt

    require(libsrt.available(), "libsrt is not installed")


@pytest.mark.slow
@pytest.mark.parametrize("passphrase", [None, PASS])
async def test_srt_receiver_gets_a_playable_stream(tmp_path: Path, passphrase: str | None) -> None:
    _require_libsrt()
    async with asyncio.timeout(60), program() as (hub, clock):
        async with srt_listener(tmp_path, passphrase=passphrase) as rx:
            s = Statuses()
            e = egress(hub, EgressTarget("srt", rx.url, None, passphrase), s)
            await e.start()
            live = await s.until("live")
            await asyncio.sleep(3)
            end = time.monotonic()
            await e.stop()
            await asyncio.sleep(0.5)
            assert s.statuses == ["connecting", "live"]
        out = rx.output or Path()
        assert probe_streams(out) == ["h264", "aac"]
        frames, dts = probe_video(out)
        # SRT live has no end-of-stream handshake: the tail in flight at stop may be cut, hence 90 %
        assert frames >= 0.9 * clock.between(live, end)
        assert all(b > a for a, b in itertools.pairwise(dts))


@pytest.mark.slow
async def test_srt_wrong_passphrase_is_rejected(tmp_path: Path) -> None:
    _require_libsrt()
    async with asyncio.timeout(60), program() as (hub, _clock), srt_listener(tmp_path, passphrase=PASS) as rx:
        s = Statuses()
        e = egress(hub, EgressTarget("srt", rx.url, None, "another-passphrase-1"), s)
        await e.start()
        t = await s.until("error")
        await e.stop()
        code = next(c for tt, _, c, _ in s.calls if tt == t)
        assert code == "auth_rejected"
