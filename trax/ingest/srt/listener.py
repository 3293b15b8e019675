"""The SRT transport: libsrt listener threads on one side, the path hub on the event loop on the other.

Threads (libsrt calls block, so none of them runs on the event loop):

* libsrt's own receive thread runs :meth:`SrtTransport._on_handshake` for every
  caller during its handshake. It parses the streamid and checks a session
  token synchronously (``MediaTokens.verify_cached``: a signature check, no
  I/O), so a bad credential is refused before the connection exists, with an
  SRT rejection reason the caller prints. It never blocks and never raises.
* one accept thread (``trax-srt-accept``) blocks in ``srt_accept`` and hands
  each accepted socket to a connection thread;
* one thread per connection: a publisher's thread reads MPEG-TS, demuxes it
  with PyAV and hands packets to the loop in bursts (``call_soon_threadsafe``); a
  reader's thread pulls packets from the hub in batches and muxes them to
  MPEG-TS (no re-encode).

Stream keys need a storage lookup, which cannot run inside the callback, so a
stream-key caller is accepted provisionally and closed right after accept when
the key does not match its path (see docs/srt.md for the trade-off).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from trax.domain.errors import Conflict, TraxError, Unauthorized
from trax.domain.paths import is_valid_path
from trax.ingest.addresses import AddressSlot, AddressSlots
from trax.ingest.hub import TAKEOVER_REASON
from trax.ingest.media import Packet, Track
from trax.ingest.srt import libsrt
from trax.ingest.srt.connection import Connection, SrtInput, SrtOutput
from trax.ingest.srt.libsrt import LibSrt, SrtError
from trax.ingest.srt.options import SrtOptions
from trax.ingest.srt.streamid import StreamId, StreamIdError, parse_streamid

if TYPE_CHECKING:
    from trax.ingest.hub import Publisher, Reader
    from trax.ingest.srt.demux import TsDemuxer
    from trax.runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")

AUDIENCES = ("ingest",)
"""SRT accepts tokens for the ``trax-ingest`` audience (docs/ingest.md)."""
_BAD_KEY_CACHE = 4096
_BAD_KEY_SECONDS = 300.0
_REFUSAL_LOGS_PER_SECOND = 10


class SrtTransport:
    """The ``srt`` transport (``ingest.srt.enabled: true``)."""

    name = "srt"

    def __init__(self, options: SrtOptions, runtime: Runtime) -> None:
        self.options = options
        self.runtime = runtime
        self.host = options.host or runtime.settings.ingest.host
        self.port = options.port
        self._lib: LibSrt | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener = libsrt.SRT_INVALID_SOCK
        self._stop = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._conns: dict[int, Connection] = {}
        self._lock = threading.Lock()
        self._bad_keys: dict[bytes, float] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._log_second, self._log_count, self._log_suppressed = 0, 0, 0
        self.refused: dict[int, int] = {}
        """Rejections during the handshake, by SRT rejection reason."""
        self._addresses = AddressSlots(options.max_connections_per_address, options.max_unauthenticated_per_address)
        # slots taken in the handshake callback, by the new socket's id, until srt_accept returns that socket
        # (oldest first, so expired ones are dropped from the front)
        self._pending_slots: dict[int, tuple[AddressSlot, float]] = {}

    def __repr__(self) -> str:
        return f"<SrtTransport {self.host}:{self.port} connections={len(self._conns)}>"

    @property
    def connections(self) -> int:
        return len(self._conns)

    @property
    def addresses(self) -> int:
        """Caller addresses with a connection (or an accepted handshake) now."""
        return len(self._addresses)

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        try:
            await asyncio.to_thread(self._open)
        except libsrt.SrtUnavailable as exc:
            if not self.options.optional:
                raise
            log.warning("SRT is off: %s (ingest.srt.optional is set)", exc)
            return
        self._accept_thread = threading.Thread(target=self._accept_loop, name="trax-srt-accept", daemon=True)
        self._accept_thread.start()
        log.info("SRT listening on %s:%d (libsrt %s)", self.host, self.port, self._require_lib().version)

    def _require_lib(self) -> LibSrt:
        if self._lib is None:
            raise RuntimeError("the SRT transport is not started")
        return self._lib

    def _open(self) -> None:
        import av  # noqa: F401  # loaded here, not by the first publisher's thread

        lib = libsrt.load()
        lib.startup()
        self._lib = lib
        o = self.options
        sock = lib.create_socket()
        try:
            lib.set_int(sock, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
            lib.set_int(sock, libsrt.SRTO_LATENCY, o.latency_ms)
            lib.set_int(sock, libsrt.SRTO_PAYLOADSIZE, o.payload_size)
            lib.set_int(sock, libsrt.SRTO_PEERIDLETIMEO, o.peer_idle_timeout_ms)
            if o.passphrase is not None:
                lib.set_bytes(sock, libsrt.SRTO_PASSPHRASE, o.passphrase.get_secret_value().encode())
                lib.set_int(sock, libsrt.SRTO_PBKEYLEN, o.pbkeylen)
            lib.bind(sock, _numeric_host(self.host), self.port)
            self.port = lib.local_port(sock)
            lib.set_listen_callback(sock, self._on_handshake)
            lib.listen(sock, o.backlog)
        except BaseException:
            lib.close(sock)
            lib.forget_listen_callback(sock)
            lib.cleanup()
            self._lib = None
            raise
        self._listener = sock

    async def stop(self) -> None:
        if self._lib is None:
            return
        self._stop.set()
        lib = self._lib
        lib.forget_listen_callback(self._listener)
        lib.close(self._listener)  # wakes the accept thread
        if self._accept_thread is not None:
            await asyncio.to_thread(self._accept_thread.join, 5)
        with self._lock:
            conns = list(self._conns.values())
            pending = [slot for slot, _ in self._pending_slots.values()]
            self._pending_slots.clear()
        for slot in pending:
            slot.release()
        for conn in conns:  # close may linger up to 2 s for a reader's tail: off the loop
            await asyncio.to_thread(self._close_conn, conn)
        for conn in conns:
            if conn.thread is not None:
                await asyncio.to_thread(conn.thread.join, 10)
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        lib.cleanup()
        self._lib = None
        self._listener = libsrt.SRT_INVALID_SOCK
        log.info("SRT listener on %s:%d stopped", self.host, self.port)

    # --- the handshake (libsrt's thread: fast, never blocks, never raises) -------

    def _refuse(self, sock: int, peer: str | None, code: int, message: str) -> int:
        lib = self._require_lib()
        lib.set_reject_reason(sock, code)
        self.refused[code] = self.refused.get(code, 0) + 1
        self._log_refusal("SRT caller %s refused (%d): %s", peer or "?", code, message)
        return -1

    def _log_refusal(self, fmt: str, *args: object) -> None:
        """Log from the loop (a slow log sink must not stall libsrt's receive thread), at most
        ``_REFUSAL_LOGS_PER_SECOND`` lines a second: a caller hammering the port must not flood the log."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        second = int(time.monotonic())
        if second != self._log_second:
            if self._log_suppressed:
                loop.call_soon_threadsafe(
                    log.warning, "SRT: %d more refusals in an earlier second were not logged", self._log_suppressed
                )
            self._log_second, self._log_count, self._log_suppressed = second, 0, 0
        self._log_count += 1
        if self._log_count > _REFUSAL_LOGS_PER_SECOND:
            self._log_suppressed += 1
            return
        loop.call_soon_threadsafe(functools.partial(log.warning, fmt, *args))

    def _on_handshake(self, sock: int, hs_version: int, peer: str | None, raw: bytes | None) -> int:
        if self._stop.is_set():
            return self._refuse(sock, peer, libsrt.REJX_DOWN, "the listener is stopping")
        if hs_version < 5:
            return self._refuse(sock, peer, libsrt.REJX_VERSION, "SRT v5 handshake (with streamid) required")
        try:
            sid = parse_streamid(raw)
        except StreamIdError as exc:
            return self._refuse(sock, peer, exc.code, exc.message)
        if not is_valid_path(sid.path):
            return self._refuse(sock, peer, libsrt.REJX_NOTFOUND, "no such stream path")
        if len(self._conns) >= self.options.max_connections:
            return self._refuse(sock, peer, libsrt.REJX_OVERLOAD, "too many SRT connections")
        if sid.token is not None:
            try:
                self.runtime.media_tokens.verify_cached(
                    sid.token, path=sid.path, action=sid.action, audiences=AUDIENCES
                )
            except Unauthorized as exc:
                self._refresh_trusted_keys(sid)
                return self._refuse(sock, peer, _token_refusal_code(exc), f"{sid.path}: {exc.message}")
        elif self._known_bad_key(sid):
            return self._refuse(sock, peer, libsrt.REJX_UNAUTHORIZED, f"{sid.path}: the stream key is not valid")
        # best effort (read without the loop's lock); open_publisher decides for certain after accept
        if sid.action == "publish" and not self.runtime.hub.can_take_over(sid.path):
            return self._refuse(sock, peer, libsrt.REJX_CONFLICT, f"{sid.path} already has a publisher")
        slot = self._addresses.admit(_peer_host(peer))
        if slot is None:
            return self._refuse(sock, peer, libsrt.REJX_OVERLOAD, "too many SRT connections from this address")
        if sid.token is not None:
            slot.authorised()  # its token was checked above; a stream key is checked after accept
        self._hold_slot(sock, slot)
        return 0

    def _hold_slot(self, sock: int, slot: AddressSlot) -> None:
        now = time.monotonic()
        with self._lock:
            old = self._pending_slots.pop(sock, None)
            self._pending_slots[sock] = (slot, now + self.options.auth_timeout_seconds)
            expired: list[AddressSlot] = []
            # a handshake libsrt accepted but never completed (or a socket id reused) must not keep its slot
            while self._pending_slots:
                first = next(iter(self._pending_slots))
                held, until = self._pending_slots[first]
                if until > now:
                    break
                del self._pending_slots[first]
                expired.append(held)
        for held in [*expired, *([old[0]] if old else [])]:
            held.release()

    def _take_slot(self, sock: int) -> AddressSlot | None:
        with self._lock:
            held = self._pending_slots.pop(sock, None)
        return held[0] if held else None

    def _refresh_trusted_keys(self, sid: StreamId) -> None:
        """Let the async verifier fetch a trusted issuer's JWKS (a new ``kid``), so the caller's retry passes.

        The handshake cannot wait for HTTP; ``MediaTokens.verify`` fetches only
        when the key is unknown and not more than once per 10 s per issuer.
        """
        tokens = self.runtime.media_tokens
        loop = self._loop
        if loop is None or sid.token is None or not any(t.jwks_url for t in tokens.settings.trusted):
            return
        token, path, action = sid.token, sid.path, sid.action

        def start() -> None:
            task = loop.create_task(tokens.verify(token, path=path, action=action, audiences=AUDIENCES))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # outcome already reported

        loop.call_soon_threadsafe(start)

    # --- accept ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        # a blocking accept sleeps in libsrt until a caller arrives or stop() closes the listener
        lib = self._require_lib()
        while not self._stop.is_set():
            try:
                sock, peer = lib.accept(self._listener)
            except SrtError as exc:
                if self._stop.is_set():
                    break
                log.warning("SRT accept failed: %s", exc)
                time.sleep(0.05)
                continue
            except Exception:
                log.exception("SRT accept loop error")
                time.sleep(0.05)
                continue
            if self._stop.is_set():
                lib.close(sock)
                break
            conn = Connection(sock, peer)
            conn.slot = self._take_slot(sock)
            with self._lock:
                self._conns[sock] = conn
            conn.thread = threading.Thread(target=self._serve, args=(conn,), name=f"trax-srt-conn-{sock}", daemon=True)
            conn.thread.start()

    def _close_conn(self, conn: Connection) -> None:
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
        lib = self._lib
        if lib is not None:
            lib.close(conn.sock)

    # --- one connection (its own thread) ---------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the event loop and wait for it from this thread."""
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError("the event loop did not answer in time") from None

    def _serve(self, conn: Connection) -> None:
        try:
            lib = self._require_lib()
            sid = parse_streamid(lib.get_bytes(conn.sock, libsrt.SRTO_STREAMID))
            self._authorize_accepted(sid, conn)
            if sid.action == "publish":
                self._publish(conn, sid)
            else:
                self._read(conn, sid)
        except (StreamIdError, TraxError) as exc:
            log.warning("SRT %s closed after accept: %s", conn.peer, getattr(exc, "message", str(exc)))
        except SrtError as exc:
            log.info("SRT %s: connection ended (%s)", conn.peer, exc)
        except Exception:
            log.exception("SRT %s: connection failed", conn.peer)
        finally:
            self._close_conn(conn)
            with self._lock:
                self._conns.pop(conn.sock, None)
            if conn.slot is not None:
                conn.slot.release()

    def _authorize_accepted(self, sid: StreamId, conn: Connection) -> None:
        tokens = self.runtime.media_tokens
        if sid.token is not None:  # checked in the handshake; again in case it expired in between
            tokens.verify_cached(sid.token, path=sid.path, action=sid.action, audiences=AUDIENCES)
            return
        assert sid.stream_key is not None
        lookup = tokens.authorize(sid.stream_key, path=sid.path, action=sid.action, audiences=AUDIENCES)
        try:
            # a storage that does not answer must not keep an unauthorised caller (and its slot) for long
            self._call(lookup, timeout=self.options.auth_timeout_seconds)
        except TimeoutError:
            raise Unauthorized("The stream key could not be checked in time.") from None
        except Unauthorized:
            self._remember_bad_key(sid)
            raise
        if conn.slot is not None:
            conn.slot.authorised()

    # Stream keys are random and rotation mints new ones, so a key that failed for a path will not
    # become valid for it: remembering the failure (as a digest) lets the handshake refuse an encoder
    # that keeps reconnecting with it, without any I/O in the callback.

    @staticmethod
    def _key_digest(sid: StreamId) -> bytes:
        return hashlib.sha256(f"{sid.path}\0{sid.stream_key}".encode()).digest()

    def _remember_bad_key(self, sid: StreamId) -> None:
        with self._lock:
            if len(self._bad_keys) >= _BAD_KEY_CACHE:
                self._bad_keys.pop(next(iter(self._bad_keys)))
            self._bad_keys[self._key_digest(sid)] = time.monotonic() + _BAD_KEY_SECONDS

    def _known_bad_key(self, sid: StreamId) -> bool:
        until = self._bad_keys.get(self._key_digest(sid))
        return until is not None and until > time.monotonic()

    # publishing ------------------------------------------------------------------------

    def _publish(self, conn: Connection, sid: StreamId) -> None:
        from trax.ingest.srt.demux import DemuxEnded, DemuxError, TsDemuxer

        lib = self._require_lib()
        source = SrtInput(lib, conn, self._stop, idle_seconds=self.runtime.hub.idle_timeout)
        demuxer = TsDemuxer(source, analyze_us=int(self.options.probe_seconds * 1_000_000))
        try:
            try:
                tracks = demuxer.open()
            except DemuxEnded as exc:  # a normal end (the sender's input ran dry), not a fault of the stream
                log.info("SRT %s publishing %s: %s (%d bytes)", conn.peer, sid.path, exc, source.bytes)
                return
            except DemuxError as exc:
                log.warning("SRT %s publishing %s: %s", conn.peer, sid.path, exc)
                return
            try:
                publisher = self._call(self.runtime.hub.open_publisher(sid.path, "srt", tracks, takeover=True))
            except Conflict:
                log.warning("SRT %s: %s already has a publisher", conn.peer, sid.path)
                return
            # taken over: drop the connection now (a stalled encoder would otherwise hold it until it times out)
            publisher.on_close(lambda reason: self._closed_by_hub(conn, sid, reason))
            log.info("SRT %s publishing %s (%s)", conn.peer, sid.path, ", ".join(t.codec for t in tracks))
            self._pump(conn, sid, source, demuxer, publisher)
        finally:
            demuxer.close()
            source.close()

    async def _closed_by_hub(self, conn: Connection, sid: StreamId, reason: str | None) -> None:
        if reason == TAKEOVER_REASON and not conn.closed:
            log.info("SRT %s: closing its publish of %s (%s)", conn.peer, sid.path, reason)
            await asyncio.to_thread(self._close_conn, conn)

    def _pump(
        self, conn: Connection, sid: StreamId, source: SrtInput, demuxer: TsDemuxer, publisher: Publisher
    ) -> None:
        assert self._loop is not None
        loop = self._loop
        reason: str | None = None
        batch: list[Packet] = []

        def deliver() -> None:  # on the loop: everything queued since the last call, in order
            with self._lock:
                packets = batch[:]
                batch.clear()
            for packet in packets:
                publisher.send(packet)

        try:
            for packet in demuxer.packets():
                if publisher.closed or self._stop.is_set():
                    break
                # one loop wake-up per burst of packets, not one per packet
                with self._lock:
                    wake = not batch
                    batch.append(packet)
                if wake:
                    loop.call_soon_threadsafe(deliver)
        except Exception as exc:
            reason = f"SRT input failed: {type(exc).__name__}"
            log.exception("SRT %s publishing %s failed", conn.peer, sid.path)
        finally:
            try:
                self._call(publisher.close(reason), timeout=15)
            except Exception:
                log.exception("closing the SRT publisher of %s failed", sid.path)
            stats = source.stats
            log.info(
                "SRT %s stopped publishing %s: %d media packets, %d bytes; SRT packets lost %s, dropped %s",
                conn.peer,
                sid.path,
                sum(demuxer.received.values()),
                source.bytes,
                stats.packets_lost if stats else "?",
                stats.packets_dropped if stats else "?",
            )

    # reading --------------------------------------------------------------------------------

    def _read(self, conn: Connection, sid: StreamId) -> None:
        from trax.ingest.srt.mux import TsMuxer

        lib = self._require_lib()
        lib.set_int(conn.sock, libsrt.SRTO_SNDTIMEO, 500)
        lib.set_linger(conn.sock, 2)  # let the tail of the stream reach the player before close
        reader = self._call(self._open_reader(sid.path))
        sender = SrtOutput(lib, conn, self.options.send_stall_seconds)
        muxer: TsMuxer | None = None
        try:
            tracks = self._wait_for_tracks(conn, reader)
            if tracks is None:
                log.info("SRT %s reading %s: no publisher arrived", conn.peer, sid.path)
                return
            muxer = TsMuxer(list(tracks), sender.write)
            if muxer.track_count == 0:
                log.warning("SRT %s reading %s: no track can be carried in MPEG-TS", conn.peer, sid.path)
                return
            log.info("SRT %s reading %s", conn.peer, sid.path)
            while not self._stop.is_set() and not sender.failed:
                batch = self._call(self._next_batch(reader), timeout=None)
                if batch is None:
                    break
                for packet in batch:
                    muxer.send(packet)
                    if sender.failed:
                        break
                if not batch and lib.state(conn.sock) != libsrt.SRTS_CONNECTED:
                    break
        finally:
            if muxer is not None:
                muxer.close()
                if not sender.failed and not self._stop.is_set():
                    self._drain(conn)
            assert self._loop is not None
            self._loop.call_soon_threadsafe(reader.close)
            log.info(
                "SRT %s stopped reading %s: %d packets sent, %d dropped",
                conn.peer,
                sid.path,
                muxer.sent if muxer else 0,
                reader.dropped,
            )

    def _drain(self, conn: Connection) -> None:
        """Before closing a player's socket: let the tail be acknowledged, then played out.

        The player's libsrt holds received data for its TSBPD latency before
        handing it over, and drops what it still holds when the connection
        closes; closing right after the last send cut ~100 ms off every stream.
        Bounded: 2 s for the acknowledgements plus the negotiated latency.
        """
        lib = self._require_lib()
        deadline = time.monotonic() + 2.0
        try:
            while lib.unacknowledged(conn.sock) and time.monotonic() < deadline:
                time.sleep(0.02)
            latency_ms = lib.get_int(conn.sock, libsrt.SRTO_PEERLATENCY)
        except SrtError:  # the player left first
            return
        time.sleep(min(latency_ms, 5000) / 1000 + 0.05)

    def _wait_for_tracks(self, conn: Connection, reader: Reader) -> tuple[Track, ...] | None:
        """The publisher's tracks; ``None`` after ``read_wait_seconds``, on stop, or when the caller left."""
        lib = self._require_lib()
        deadline = time.monotonic() + self.options.read_wait_seconds
        while not self._stop.is_set() and lib.state(conn.sock) == libsrt.SRTS_CONNECTED:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:  # in short waits, so that stop() and a departed caller are noticed
                return self._call(reader.tracks(wait=min(remaining, 0.5)), timeout=None)
            except TimeoutError:
                continue
            except TraxError:
                return None
        return None

    async def _open_reader(self, path: str) -> Reader:
        return self.runtime.hub.open_reader(path, max_queue=self.options.reader_queue)

    @staticmethod
    async def _next_batch(reader: Reader, limit: int = 64) -> list[Packet] | None:
        """Queued packets (waiting up to a second for one); ``None`` when the publisher has left."""
        batch: list[Packet] = []
        try:
            async with asyncio.timeout(1.0):
                batch.append(await reader.__anext__())
        except TimeoutError:
            return []
        except StopAsyncIteration:
            return None
        try:
            while len(batch) < limit:
                packet = reader.get_nowait()
                if packet is None:
                    break
                batch.append(packet)
        except StopAsyncIteration:
            pass
        return batch


_FORBIDDEN_MESSAGES = ("The token does not allow", "The token is for another stream path")


def _token_refusal_code(exc: Unauthorized) -> int:
    """1403 for a valid token that does not cover this path or action; 1401 for a bad or expired one."""
    return libsrt.REJX_FORBIDDEN if exc.message.startswith(_FORBIDDEN_MESSAGES) else libsrt.REJX_UNAUTHORIZED


def _peer_host(peer: str | None) -> str:
    """The address part of libsrt's ``host:port`` / ``[v6]:port`` (``?`` when unknown)."""
    if not peer:
        return "?"
    return peer.rsplit(":", 1)[0].strip("[]")


def _numeric_host(host: str) -> str:
    """libsrt binds numeric addresses only: resolve a name (e.g. ``localhost``) to its first UDP address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        return str(infos[0][4][0])
    return host
