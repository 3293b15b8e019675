"""The ``rtmp`` and ``rtmps`` transports: an asyncio TCP (or TLS) server running one session per client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import Any

from trax.ingest.addresses import AddressSlot, AddressSlots
from trax.ingest.rtmp.auth import AdobeChallenges
from trax.ingest.rtmp.budget import ByteBudget
from trax.ingest.rtmp.options import RtmpOptions
from trax.ingest.rtmp.session import MediaEnv, RtmpSession
from trax.settings import ConfigError

log = logging.getLogger(__name__)

READ_LIMIT = 256 * 1024
LISTEN_BACKLOG = 1024


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    # librtmp (rtmpdump, GStreamer rtmpsink, OBS's lineage) reads the TLS 1.3 session tickets a server
    # sends after the handshake as RTMP bytes and fails its handshake: send none (RTMP never resumes anyway)
    ctx.num_tickets = 0
    return ctx


def _peer(sock: socket.socket) -> str:
    try:
        peer = sock.getpeername()
    except OSError:
        return "?"
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"


def _detail(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or str(exc)
    return f": {reason}" if reason else ""


class RtmpListener:
    """One listening socket; ``start``/``stop`` with the runtime. Stopping ends every session."""

    def __init__(self, name: str, options: RtmpOptions, env: MediaEnv, *, host: str = "127.0.0.1") -> None:
        self.name = name
        self.options = options
        self.env = env
        self.host = options.host or host
        self.port = options.port
        self._server: asyncio.Server | None = None
        self._listening: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._challenges = AdobeChallenges(env.deps.server_key)
        self._budget = ByteBudget(options.max_buffered_bytes)
        self._addresses = AddressSlots(options.max_connections_per_address, options.max_unauthenticated_per_address)
        self._ssl: ssl.SSLContext | None = None
        if options.certfile is not None and options.keyfile is not None:
            try:
                self._ssl = tls_context(str(options.certfile), str(options.keyfile))
            except (OSError, ssl.SSLError) as exc:  # a deployment mistake: say which, at start-up
                raise ConfigError(f"ingest.{name}: cannot load certfile/keyfile: {exc}") from None

    def __repr__(self) -> str:
        return f"<RtmpListener {self.name} {self.host}:{self.port} sessions={len(self._sessions)}>"

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    @property
    def buffered_bytes(self) -> int:
        """Bytes of incomplete messages held by all sessions now (bounded by ``max_buffered_bytes``)."""
        return self._budget.in_use

    @property
    def addresses(self) -> int:
        """Client addresses with a connection now."""
        return len(self._addresses)

    async def start(self) -> None:
        if self._ssl is None:
            self._server = await asyncio.start_server(self._accept, self.host, self.options.port, limit=READ_LIMIT)
            sockets = self._server.sockets
            if sockets:
                self.port = int(sockets[0].getsockname()[1])
        else:
            self._listening = _listening_socket(self.host, self.options.port)
            self.port = int(self._listening.getsockname()[1])
            self._acceptor = asyncio.create_task(self._accept_tls(self._listening), name=f"{self.name}-accept")
        log.info("%s listening on %s:%s", self.name, self.host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A plain RTMP connection, already accepted by asyncio's server."""
        slot = self._admit(writer.get_extra_info("peername"))
        if slot is None:  # over a cap: no log line per refusal
            writer.transport.abort()
            return
        await self._serve(reader, writer, slot)

    async def _accept_tls(self, listening: socket.socket) -> None:
        """Accept RTMPS sockets ourselves: the caps apply before the TLS handshake, then the loop does TLS.

        Not ``start_server(ssl=...)``, which admits a socket only once its handshake is done (a socket stalled
        in it would count against nothing), and not ``StreamWriter.start_tls`` on an accepted plain stream,
        which under uvloop garbles the handshake of clients that send their ClientHello at once (librtmp).
        """
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, address = await loop.sock_accept(listening)
            except OSError as exc:  # out of file descriptors, say: keep the listener, try again shortly
                log.warning("%s: accept failed (%s)", self.name, exc)
                await asyncio.sleep(0.1)
                continue
            slot = self._admit(address)
            if slot is None:
                sock.close()
                continue
            # counted at once, so a stop() during the handshake cancels it too
            self._sessions.add(asyncio.create_task(self._handshake_and_serve(sock, slot), name=f"{self.name}-session"))

    async def _handshake_and_serve(self, sock: socket.socket, slot: AddressSlot) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        task = asyncio.current_task()
        assert task is not None and self._ssl is not None
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, sock, ssl=self._ssl, ssl_handshake_timeout=self.options.handshake_timeout
            )
        except (OSError, ssl.SSLError, TimeoutError, EOFError) as exc:
            # one line, no traceback: failed handshakes are routine on an open port (scanners, wrong scheme)
            log.info("%s %s: TLS handshake failed (%s)", self.name, _peer(sock), type(exc).__name__ + _detail(exc))
            sock.close()
            slot.release()
            self._sessions.discard(task)
            return
        except BaseException:
            sock.close()
            slot.release()
            self._sessions.discard(task)
            raise
        await self._serve(reader, asyncio.StreamWriter(transport, protocol, reader, loop), slot)

    def _admit(self, peer: Any) -> AddressSlot | None:
        if len(self._sessions) >= self.options.max_connections:
            return None
        return self._addresses.admit(str(peer[0]) if isinstance(peer, tuple) and peer else "?")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slot: AddressSlot) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            session = RtmpSession(
                reader,
                writer,
                self.env,
                self.options,
                self.name,
                self._challenges,
                budget=self._budget,
                on_authorised=slot.authorised,
            )
            await session.run()
        except Exception:
            log.exception("%s session crashed", self.name)
            writer.transport.abort()
        finally:
            slot.release()
            self._sessions.discard(task)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acceptor
        if self._listening is not None:
            self._listening.close()
            self._listening = None
        tasks = list(self._sessions)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await server.wait_closed()


def _listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP listening socket on ``host`` (an IPv4 or IPv6 address or a name)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def make_listener(name: str, options: RtmpOptions, runtime: Any) -> RtmpListener:
    return RtmpListener(name, options, runtime, host=runtime.settings.ingest.host)
