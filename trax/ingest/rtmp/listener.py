"""The ``rtmp`` and ``rtmps`` transports: an asyncio TCP (or TLS) server running one session per client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

from trax.ingest.addresses import AddressSlots
from trax.ingest.rtmp.auth import AdobeChallenges
from trax.ingest.rtmp.budget import ByteBudget
from trax.ingest.rtmp.options import RtmpOptions
from trax.ingest.rtmp.session import MediaEnv, RtmpSession
from trax.settings import ConfigError

log = logging.getLogger(__name__)


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    # librtmp (rtmpdump, GStreamer rtmpsink, OBS's lineage) reads the TLS 1.3 session tickets a server
    # sends after the handshake as RTMP bytes and fails its handshake: send none (RTMP never resumes anyway)
    ctx.num_tickets = 0
    return ctx


class RtmpListener:
    """One listening socket; ``start``/``stop`` with the runtime. Stopping ends every session."""

    def __init__(self, name: str, options: RtmpOptions, env: MediaEnv, *, host: str = "127.0.0.1") -> None:
        self.name = name
        self.options = options
        self.env = env
        self.host = options.host or host
        self.port = options.port
        self._server: asyncio.Server | None = None
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
        # TLS is started by _accept, after the connection caps: a socket stalled in its TLS handshake
        # then counts against its address like any other unauthorised connection
        self._server = await asyncio.start_server(self._accept, self.host, self.options.port, limit=256 * 1024)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("%s listening on %s:%s", self.name, self.host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._sessions) >= self.options.max_connections:
            writer.transport.abort()
            return
        peer = writer.get_extra_info("peername")
        slot = self._addresses.admit(str(peer[0]) if isinstance(peer, tuple) and peer else "?")
        if slot is None:  # this address has its share of (unauthorised) connections: no log line per refusal
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            if self._ssl is not None and not await self._start_tls(writer):
                return
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

    async def _start_tls(self, writer: asyncio.StreamWriter) -> bool:
        """The server side of the TLS handshake within ``handshake_timeout``; ``False`` (and aborted) if it failed."""
        assert self._ssl is not None
        try:
            async with asyncio.timeout(self.options.handshake_timeout):
                await writer.start_tls(self._ssl)
        except (OSError, ssl.SSLError, TimeoutError, EOFError):
            transport = writer.transport
            if transport is not None:
                transport.abort()
            return False
        return True

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
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


def make_listener(name: str, options: RtmpOptions, runtime: Any) -> RtmpListener:
    return RtmpListener(name, options, runtime, host=runtime.settings.ingest.host)
