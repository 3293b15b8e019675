"""Destination egress: one program path pushed to one RTMP(S) or SRT receiver, reconnecting forever.

An :class:`Egress` reads its hub path through its own bounded reader, so a slow or
stuck destination never holds up the program or another destination: the hub
drops that reader's backlog and resumes it at the next keyframe.

RTMP/RTMPS is a small asyncio client built on the ingest side's RTMP pieces
(chunk encoding, AMF0, FLV tag bodies). It is not PyAV/FFmpeg's ``rtmp://``
protocol because PyAV opens an output URL (``avio_open``) and writes its header
while holding the GIL and without passing protocol options: ``rw_timeout`` and
``tls_verify`` would never reach the socket, and a receiver that stalls the
handshake would freeze the whole event loop. Here every network wait is an
``await`` bounded by ``connect_timeout``, and :meth:`Egress.stop` can always
abandon a stuck socket. The close still says goodbye like FFmpeg does
(``FCUnpublish`` + ``deleteStream``).

SRT is a libsrt caller socket (:mod:`trax.ingest.srt.libsrt`) fed by the shared
MPEG-TS muxer; the blocking connect runs in a worker thread, sends are
non-blocking so the event loop never waits on the network.

Secrets (the stream key, URL user-info and query, SRT streamid and passphrase)
appear in no log record, exception text or status message: everything shown
names only :attr:`EgressTarget.public`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import socket
import ssl
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from trax.ingest.hub import PathHub, Reader
from trax.ingest.media import Packet, Track
from trax.ingest.rtmp import amf0
from trax.ingest.rtmp import messages as m
from trax.ingest.rtmp.chunks import (
    MAX_TIMESTAMP_FIELD,
    ChunkError,
    ChunkReader,
    chunked_payload,
    encode_message,
    message_header,
)
from trax.ingest.rtmp.flv import FlvEgress, TagCache

log = logging.getLogger(__name__)

StatusCallback = Callable[[str, str | None, str | None], Awaitable[None]]

ERROR_CODES = frozenset({"connection_refused", "auth_rejected", "dns_failed", "tls_failed", "timeout", "stream_ended"})

RTMP_CHUNK_SIZE = 4096
RTMP_HANDSHAKE_SIZE = 1536
RTMP_WRITE_BUFFER = 512 * 1024
"""Bytes the socket may hold unsent before sending waits (bounded memory per egress)."""
CLOSE_GRACE = 1.5
"""Seconds a clean close may take (flush, FCUnpublish, deleteStream) before the socket is dropped."""
SRT_LIVE_PAYLOAD = 1316

# libsrt's SRT_ERRNO values and SRT_REJECT_REASON values (srt.h, libsrt 1.5) the mapping tells apart
SRT_ENOSERVER = 1001
SRT_ECONNREJ = 1002
SRT_REJ_PEER = 2
SRT_REJ_BADSECRET = 10
SRT_REJ_UNSECURE = 11
SRT_REJ_TIMEOUT = 16
SRT_REJ_USERDEFINED = 1000


# --- target ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EgressTarget:
    """Where to push: ``rtmp(s)://host[:port]/app/streamkey`` or ``srt://host:port``."""

    kind: Literal["rtmp", "srt"]
    url: str = field(repr=False)
    streamid: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)

    @property
    def public(self) -> str:
        """The URL without secrets: no stream key (last path segment), user-info or query."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rpartition("@")[2]
        if self.kind == "srt":
            return f"{parts.scheme}://{netloc}"
        path = parts.path.rsplit("/", 1)[0] if "/" in parts.path else ""
        return f"{parts.scheme}://{netloc}{path}"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        if parts.port is not None:
            return parts.port
        return {"rtmp": 1935, "rtmps": 443}.get(parts.scheme, 0)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "rtmps"


def _rtmp_app_and_key(url: str) -> tuple[str, str, str]:
    """(app, stream key with its query, tcUrl) of an RTMP URL; the tcUrl carries no key and no user-info."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    app, _, key = parts.path.lstrip("/").rpartition("/")
    if parts.query:
        key = f"{key}?{parts.query}"
    return app, key, f"{parts.scheme}://{netloc}/{app}"


# --- errors ------------------------------------------------------------------------------------


class EgressError(Exception):
    """A connection failed or ended; ``code`` is one of :data:`ERROR_CODES`, the text names only the public URL."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_MESSAGES = {
    "connection_refused": "{0} refused the connection",
    "auth_rejected": "{0} rejected the stream (check the stream key or credentials)",
    "dns_failed": "the host of {0} could not be resolved",
    "tls_failed": "the TLS handshake with {0} failed",
    "timeout": "{0} did not answer in time",
    "stream_ended": "{0} ended the connection",
}


def egress_error(code: str, public: str) -> EgressError:
    return EgressError(code, _MESSAGES[code].format(public))


def classify(exc: BaseException, *, tls: bool = False, connected: bool = True) -> str:
    """The error code of an exception raised while connecting (``connected=False``) or streaming."""
    if isinstance(exc, EgressError):
        return exc.code
    if isinstance(exc, socket.gaierror):
        return "dns_failed"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls_failed"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "connection_refused"
    if isinstance(exc, OSError) and exc.errno in (errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "timeout"
    if tls and not connected and isinstance(exc, ConnectionError | asyncio.IncompleteReadError | EOFError):
        # a peer that drops the connection during the TLS handshake is not speaking TLS to us
        return "tls_failed"
    return "stream_ended"


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random | None = None) -> float:
    """Seconds before retry ``attempt`` (0-based): exponential from ``low``, capped at ``high``, with jitter.

    The jitter (the upper half of the exponential step) keeps many destinations of one failed
    receiver from retrying in lock-step; the result always lies in ``[low, high]``.
    """
    low = max(0.0, low)
    high = max(low, high)
    step = min(high, low * (2.0 ** min(attempt, 32)))
    r = (rng or random).uniform(0.5, 1.0)
    return min(high, max(low, step * r))


# --- the egress --------------------------------------------------------------------------------


class RtmpFanout:
    """What the RTMP destinations of one program path work out once per packet instead of once each.

    Every destination reads the same :class:`Packet` objects, and below the extended-timestamp range
    an RTMP message differs between connections only in its 11-byte type-0 header (timestamp, stream
    id), so the FLV tag body and its chunked form are shared: N destinations cost one NAL scan and
    one copy of each frame plus N small headers. Bounded to the latest ``size`` packets.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.tags = TagCache(size)
        self._chunked: OrderedDict[int, tuple[bytes, bytes]] = OrderedDict()

    def chunked(self, payload: bytes, csid: int, timestamp: int) -> bytes:
        if len(payload) <= RTMP_CHUNK_SIZE:
            return payload
        if timestamp & 0xFFFFFFFF >= MAX_TIMESTAMP_FIELD:
            # continuations repeat an extended timestamp, which is this connection's own
            return chunked_payload(payload, csid, RTMP_CHUNK_SIZE, timestamp)
        hit = self._chunked.get(id(payload))
        if hit is not None and hit[0] is payload:
            return hit[1]
        out = chunked_payload(payload, csid, RTMP_CHUNK_SIZE)
        self._chunked[id(payload)] = (payload, out)
        if len(self._chunked) > self.size:
            self._chunked.popitem(last=False)
        return out


class Egress:
    """Pushes hub path ``path`` to ``target`` until :meth:`stop`, reporting status changes to ``on_status``."""

    def __init__(
        self,
        hub: PathHub,
        path: str,
        target: EgressTarget,
        on_status: StatusCallback,
        *,
        label: str,
        queue_packets: int = 600,
        connect_timeout: float = 5.0,
        backoff_min: float = 1.0,
        backoff_max: float = 30.0,
        tls_verify: bool = True,
        fanout: RtmpFanout | None = None,
    ) -> None:
        self.hub = hub
        self.fanout = fanout if fanout is not None else RtmpFanout()
        self.path = path
        self.target = target
        self.on_status = on_status
        self.label = label
        self.queue_packets = max(1, queue_packets)
        self.connect_timeout = connect_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.tls_verify = tls_verify
        self.sent = 0
        self.dropped = 0
        self.reconnects = 0
        self.status = "idle"
        self.last_error: str | None = None
        """The code of the latest failure (kept while retrying)."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def __repr__(self) -> str:
        return f"<Egress {self.label} {self.target.public} {self.status} sent={self.sent}>"

    async def start(self) -> None:
        """Begin pushing in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"trax-egress-{self.label}")

    async def stop(self) -> None:
        """Close the destination cleanly and end; bounded even when the receiver hangs. Reports nothing."""
        self._stopping = True
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # the task's own close is bounded by CLOSE_GRACE; this bound is a backstop
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
            async with asyncio.timeout(CLOSE_GRACE + 2.0):
                await asyncio.shield(task)
        self.status = "idle"

    async def _report(self, status: str, code: str | None = None, message: str | None = None) -> None:
        if self._stopping or (status == self.status and (status != "error" or code == self.last_error)):
            return
        self.status = status
        if status == "error":
            self.last_error = code
        try:
            await self.on_status(status, code, message)
        except Exception:
            log.exception("egress %s: reporting status %s failed", self.label, status)

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            await self._report("connecting")
            went_live = False
            try:
                went_live = await self._session()
                # the program path ended: wait for its next publisher with a fresh connection
                attempt = 0
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                code = classify(exc, tls=self.target.tls)
                text = exc.message if isinstance(exc, EgressError) else _MESSAGES[code].format(self.target.public)
                # the first failure of a kind is worth a warning; its retries are not
                level = logging.DEBUG if code == self.last_error else logging.WARNING
                log.log(level, "egress %s: %s (%s)", self.label, text, code)
                went_live = self.status == "live"
                await self._report("error", code, text)
            if went_live:
                attempt = 0
            delay = backoff_delay(attempt, self.backoff_min, self.backoff_max)
            attempt += 1
            await asyncio.sleep(delay)
            self.reconnects += 1

    async def _session(self) -> bool:
        """One connection: wait for the program's tracks, connect, push until the path ends or something fails."""
        reader = self.hub.open_reader(self.path, self.queue_packets)
        try:
            tracks = list(await reader.tracks())
            if self.target.kind == "srt":
                srt = _SrtConnection(self, tracks)
                try:
                    await srt.connect()
                    await self._report("live")
                    await srt.pump(reader)
                finally:
                    await srt.close()
            else:
                rtmp = _RtmpConnection(self, tracks)
                try:
                    await rtmp.connect()
                    await rtmp.pump(reader)
                finally:
                    await rtmp.close(reader)
            return True
        finally:
            reader.close()


class _Gate:
    """Per connection: start at a video keyframe and never hand out a non-increasing dts on a track."""

    def __init__(self, tracks: list[Track]) -> None:
        self.video = next((t.index for t in tracks if t.kind == "video"), None)
        self.started = self.video is None
        self.last: dict[int, int] = {}

    def admit(self, packet: Packet) -> bool:
        if not self.started:
            if packet.track != self.video or not packet.keyframe:
                return False
            self.started = True
        last = self.last.get(packet.track)
        if last is not None and packet.dts <= last:
            return False
        self.last[packet.track] = packet.dts
        return True


# --- RTMP ----------------------------------------------------------------------------------------


class _RtmpConnection:
    def __init__(self, egress: Egress, tracks: list[Track]) -> None:
        self.e = egress
        self.target = egress.target
        self.public = egress.target.public
        self.tracks = tracks
        self.flv = FlvEgress(tracks, shared=egress.fanout.tags)
        self.gate = _Gate(tracks)
        self.app, self.key, self.tc_url = _rtmp_app_and_key(self.target.url)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.chunks: ChunkReader | None = None
        self.stream_id = 0
        self.transaction = 0
        self.published = False
        self.live = False
        self._pending: dict[int, asyncio.Future[list[Any]]] = {}
        self._status: asyncio.Future[list[Any]] | None = None
        self._control: asyncio.Task[None] | None = None
        self._last_ms: dict[int, int] = {}

    # connecting ------------------------------------------------------------------------------

    async def connect(self) -> None:
        timeout = self.e.connect_timeout
        context: ssl.SSLContext | None = None
        if self.target.tls:
            context = ssl.create_default_context()
            if not self.e.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        try:
            async with asyncio.timeout(timeout):
                loop = asyncio.get_running_loop()
                infos = await loop.getaddrinfo(self.target.host, self.target.port, type=socket.SOCK_STREAM)
                if not infos:
                    raise socket.gaierror("no address")
        except socket.gaierror:
            raise egress_error("dns_failed", self.public) from None
        except TimeoutError:
            raise egress_error("timeout", self.public) from None
        try:
            async with asyncio.timeout(timeout):
                self.reader, self.writer = await asyncio.open_connection(
                    self.target.host,
                    self.target.port,
                    ssl=context,
                    server_hostname=self.target.host if context is not None else None,
                    ssl_handshake_timeout=timeout if context is not None else None,
                )
        except (OSError, TimeoutError, EOFError, asyncio.IncompleteReadError) as exc:
            raise egress_error(classify(exc, tls=self.target.tls, connected=False), self.public) from None
        self.writer.transport.set_write_buffer_limits(high=RTMP_WRITE_BUFFER)
        negotiating = False
        try:
            async with asyncio.timeout(timeout):
                await self._handshake()
                negotiating = True
                self.chunks = ChunkReader(self.reader)
                self._control = asyncio.create_task(self._read_control(), name=f"trax-egress-rtmp-{self.e.label}")
                await self._publish()
        except EgressError as exc:
            if negotiating and exc.code == "stream_ended":
                # servers that refuse an app or key often just hang up (nginx-rtmp does) instead of an _error
                raise egress_error("auth_rejected", self.public) from None
            raise
        except (OSError, TimeoutError, EOFError, asyncio.IncompleteReadError, ChunkError, amf0.AmfError) as exc:
            code = classify(exc)
            if negotiating and code == "stream_ended":
                code = "auth_rejected"
            raise egress_error(code, self.public) from None

    async def _handshake(self) -> None:
        assert self.reader is not None and self.writer is not None
        c1 = struct.pack(">II", int(time.monotonic() * 1000) & 0xFFFFFFFF, 0) + os.urandom(RTMP_HANDSHAKE_SIZE - 8)
        self.writer.write(b"\x03" + c1)
        await self.writer.drain()
        s0s1 = await self.reader.readexactly(1 + RTMP_HANDSHAKE_SIZE)
        if s0s1[0] != 3:
            raise egress_error("stream_ended", self.public)
        self.writer.write(s0s1[1:])  # C2 echoes S1
        await self.reader.readexactly(RTMP_HANDSHAKE_SIZE)  # S2 (an echo of C1; servers vary, so not checked)
        self._send(m.set_chunk_size(RTMP_CHUNK_SIZE), m.CSID_CONTROL, chunk_size=128)

    def _send(self, msg: m.Message, csid: int, *, chunk_size: int = RTMP_CHUNK_SIZE) -> None:
        assert self.writer is not None
        self.writer.write(encode_message(msg, csid, chunk_size))

    def _command(self, name: str, *args: Any, stream_id: int = 0, expect: bool = True) -> asyncio.Future[list[Any]]:
        self.transaction += 1
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if expect:
            self._pending[self.transaction] = fut
        payload = amf0.encode(name, float(self.transaction), *args)
        self._send(m.Message(m.COMMAND_AMF0, stream_id, 0, payload), m.CSID_COMMAND)
        return fut

    async def _publish(self) -> None:
        assert self.writer is not None
        connect = self._command(
            "connect",
            {
                "app": self.app,
                "type": "nonprivate",
                "flashVer": "FMLE/3.0 (compatible; trax)",
                "tcUrl": self.tc_url,
            },
        )
        await self.writer.drain()
        reply = await connect
        if reply[0] != "_result":
            raise egress_error("auth_rejected", self.public)
        self._command("releaseStream", None, self.key, expect=False)
        self._command("FCPublish", None, self.key, expect=False)
        create = self._command("createStream", None)
        await self.writer.drain()
        reply = await create
        if reply[0] != "_result" or len(reply) < 4 or not isinstance(reply[3], int | float):
            raise egress_error("auth_rejected", self.public)
        self.stream_id = int(reply[3])
        self._status = asyncio.get_running_loop().create_future()
        self._command("publish", None, self.key, "live", stream_id=self.stream_id, expect=False)
        await self.writer.drain()
        info = await self._status
        if not _publish_started(info):
            raise egress_error("auth_rejected", self.public)
        self.published = True
        meta = amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray(self.flv.metadata()))
        self._send(m.Message(m.DATA_AMF0, self.stream_id, 0, meta), m.CSID_DATA)

    async def _read_control(self) -> None:
        """Answer the server (pings, acks) and hand command replies to their waiters; ends on EOF or error."""
        assert self.chunks is not None and self.writer is not None
        try:
            while True:
                msg = await self.chunks.read_message()
                ack = self.chunks.ack_due()
                if ack is not None:
                    self._send(m.acknowledgement(ack), m.CSID_CONTROL)
                if msg.type_id == m.USER_CONTROL and len(msg.payload) >= 6:
                    event, value = struct.unpack_from(">HI", msg.payload)
                    if event == m.PING_REQUEST:
                        self._send(m.user_control(m.PING_RESPONSE, value), m.CSID_CONTROL)
                elif msg.type_id == m.COMMAND_AMF0:
                    self._on_command(amf0.decode_all(msg.payload))
        except Exception as exc:
            err = egress_error("stream_ended", self.public) if not isinstance(exc, EgressError) else exc
            for fut in [*self._pending.values(), self._status]:
                if fut is not None and not fut.done():
                    fut.set_exception(err)
            raise err from None

    def _on_command(self, values: list[Any]) -> None:
        if not values:
            return
        name = values[0]
        if name in ("_result", "_error") and len(values) > 1 and isinstance(values[1], int | float):
            fut = self._pending.pop(int(values[1]), None)
            if fut is not None and not fut.done():
                fut.set_result(values)
        elif name == "onStatus":
            info = values[3] if len(values) > 3 and isinstance(values[3], dict) else {}
            if self._status is not None and not self._status.done():
                self._status.set_result([info])
            elif str(info.get("level", "")).lower() == "error":
                # a running publish was ended by the server (kicked, key revoked, ...)
                raise egress_error("stream_ended", self.public)

    # streaming -------------------------------------------------------------------------------

    async def pump(self, reader: Reader) -> None:
        """Send hub packets until the path ends; raises :class:`EgressError` when the connection fails."""
        control = self._control
        assert control is not None and self.writer is not None
        transport = self.writer.transport
        # the control task ending (EOF, reset, an error from the server) is the other thing a wait must end for
        control.add_done_callback(lambda _: reader.wake())
        while True:
            if control.done():
                control.result()  # raises the reason
                raise egress_error("stream_ended", self.public)
            try:
                packet = reader.get_nowait()
            except StopAsyncIteration:
                return
            if packet is None:
                await reader.wait(None)
                continue
            if self._write(packet) and not self.live:
                self.live = True
                await self.e._report("live")
            if transport.get_write_buffer_size() > RTMP_WRITE_BUFFER:
                await self._drain()

    def _write(self, packet: Packet) -> bool:
        if not self.gate.admit(packet):
            self.e.dropped += 1
            return False
        assert self.writer is not None
        wrote = False
        for type_id, ts, body in self.flv.convert(packet):
            if type_id in (m.VIDEO, m.AUDIO) and body[1] == 1:
                # FLV timestamps are milliseconds: two packets in one millisecond would repeat a dts
                last = self._last_ms.get(type_id)
                if last is not None and ts <= last:
                    self.e.dropped += 1
                    continue
                self._last_ms[type_id] = ts
                wrote = True
            csid = m.CSID_VIDEO if type_id == m.VIDEO else m.CSID_AUDIO
            header = message_header(type_id, self.stream_id, ts, len(body), csid)
            self.writer.writelines((header, self.e.fanout.chunked(body, csid, ts)))
        if wrote:
            self.e.sent += 1
        return wrote

    async def _drain(self) -> None:
        assert self.writer is not None
        try:
            async with asyncio.timeout(self.e.connect_timeout):
                await self.writer.drain()
        except TimeoutError:
            raise egress_error("timeout", self.public) from None
        except (OSError, EOFError) as exc:
            raise egress_error(classify(exc), self.public) from None

    async def close(self, reader: Reader) -> None:
        """Flush what is queued, unpublish and delete the stream, close; bounded by :data:`CLOSE_GRACE`."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            if self.published and not writer.is_closing():
                self.writer = writer
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_GRACE):
                        while (packet := reader.get_nowait()) is not None:
                            self._write(packet)
                            if writer.transport.get_write_buffer_size() > RTMP_WRITE_BUFFER:
                                await writer.drain()
                        self._command("FCUnpublish", None, self.key, expect=False)
                        self._command("deleteStream", None, float(self.stream_id), expect=False)
                        await writer.drain()
                self.writer = None
        finally:
            if self._control is not None:
                self._control.cancel()
                with contextlib.suppress(BaseException):
                    await self._control
            for fut in self._pending.values():
                fut.cancel()
            # abort, not close: a receiver that never reads must not keep this socket (and its buffer) alive
            writer.transport.abort()


def _publish_started(info: list[Any]) -> bool:
    data = info[0] if info and isinstance(info[0], dict) else {}
    return str(data.get("level", "")).lower() != "error" and "Publish.Start" in str(data.get("code", ""))


# --- SRT ---------------------------------------------------------------------------------------


class _SrtConnection:
    def __init__(self, egress: Egress, tracks: list[Track]) -> None:
        self.e = egress
        self.target = egress.target
        self.public = egress.target.public
        self.tracks = tracks
        self.gate = _Gate(tracks)
        self.sock: int | None = None
        self.lib: Any = None
        self.muxer: Any = None
        self._blocked_since: float | None = None
        self._failure: EgressError | None = None

    async def connect(self) -> None:
        from trax.ingest.srt import libsrt

        try:
            self.lib = libsrt.load()
        except libsrt.SrtUnavailable:
            raise EgressError("connection_refused", f"SRT is not available on this server for {self.public}") from None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.e.connect_timeout):
                infos = await loop.getaddrinfo(self.target.host, self.target.port, type=socket.SOCK_DGRAM)
        except (socket.gaierror, TimeoutError):
            raise egress_error("dns_failed", self.public) from None
        address = str(infos[0][4][0])
        self.lib.startup()
        self.sock = self.lib.create_socket()
        sock = self.sock
        try:
            await asyncio.to_thread(self._connect_blocking, sock, address)
        except libsrt.SrtError as exc:
            raise egress_error(self._srt_code(sock, exc.code), self.public) from None
        from trax.ingest.srt.mux import TsMuxer

        self.muxer = TsMuxer(self.tracks, self._send)

    def _connect_blocking(self, sock: int, address: str) -> None:
        from trax.ingest.srt import libsrt

        lib = self.lib
        lib.set_int(sock, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
        lib.set_int(sock, libsrt.SRTO_CONNTIMEO, max(100, int(self.e.connect_timeout * 1000)))
        if self.target.streamid:
            lib.set_bytes(sock, libsrt.SRTO_STREAMID, self.target.streamid.encode())
        if self.target.passphrase:
            try:
                lib.set_bytes(sock, libsrt.SRTO_PASSPHRASE, self.target.passphrase.encode())
            except libsrt.SrtError:
                # libsrt refuses passphrases outside 10..79 characters; its message is not passed on
                raise EgressError("auth_rejected", f"the SRT passphrase for {self.public} is not valid") from None
        lib.connect(sock, address, self.target.port)
        # sends come from the event loop: never block it, a full send buffer drops instead
        lib.set_bool(sock, libsrt.SRTO_SNDSYN, False)

    def _srt_code(self, sock: int, error: int) -> str:
        reason = self.lib.reject_reason(sock)
        if reason in (SRT_REJ_BADSECRET, SRT_REJ_UNSECURE) or reason >= SRT_REJ_USERDEFINED:
            return "auth_rejected"
        if reason == SRT_REJ_TIMEOUT or error == SRT_ENOSERVER:
            return "timeout"
        return "connection_refused"

    def _send(self, chunk: bytes) -> None:
        from trax.ingest.srt import libsrt

        if self._failure is not None or self.sock is None:
            return
        try:
            for pos in range(0, len(chunk), SRT_LIVE_PAYLOAD):
                if self.lib.sendmsg(self.sock, chunk[pos : pos + SRT_LIVE_PAYLOAD]) == 0:
                    # the send buffer is full: the receiver is not keeping up (or gone); drop, time it
                    if self._blocked_since is None:
                        self._blocked_since = time.monotonic()
                    elif time.monotonic() - self._blocked_since > self.e.connect_timeout:
                        self._failure = egress_error("timeout", self.public)
                    return
                self._blocked_since = None
        except libsrt.SrtError:
            self._failure = egress_error("stream_ended", self.public)

    async def pump(self, reader: Reader) -> None:
        from trax.ingest.srt import libsrt

        while True:
            if self._failure is not None:
                raise self._failure
            try:
                packet = reader.get_nowait()
            except StopAsyncIteration:
                return
            if packet is None:
                assert self.sock is not None
                if self.lib.state(self.sock) in (libsrt.SRTS_BROKEN, libsrt.SRTS_CLOSED, libsrt.SRTS_NONEXIST):
                    raise egress_error("stream_ended", self.public)
                await reader.wait(0.5)
                continue
            if not self.gate.admit(packet):
                self.e.dropped += 1
                continue
            before = self.muxer.sent
            self.muxer.send(packet)
            if self.muxer.sent > before:
                self.e.sent += 1
            else:
                self.e.dropped += 1

    async def close(self) -> None:
        if self.muxer is not None:
            self.muxer.close()
            self.muxer = None
        sock, self.sock = self.sock, None
        if sock is not None and self.lib is not None:
            lib = self.lib
            # srt_close may wait for the peer briefly; keep it off the event loop
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_GRACE):
                    await asyncio.to_thread(lib.close, sock)
            lib.cleanup()
