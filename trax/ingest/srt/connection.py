"""One accepted SRT socket and the byte streams over it: MPEG-TS in for PyAV, MPEG-TS out to a player."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time

from trax.ingest.addresses import AddressSlot
from trax.ingest.srt import libsrt
from trax.ingest.srt.libsrt import LibSrt, SrtError

log = logging.getLogger(__name__)

RECV_BUFFER = 1500
"""Room for one live-mode message (at most 1456 bytes)."""
POLL_MS = 250
"""Receive timeout: how soon a blocked read sees the stop flag or a departed peer."""
STATS_EVERY = 2000
"""Messages between two samples of libsrt's counters (about a second at 20 Mbit/s)."""


class Connection:
    """An accepted socket, the thread serving it, and whether it was closed."""

    def __init__(self, sock: int, peer: str | None) -> None:
        self.sock = sock
        self.peer = peer or "?"
        self.thread: threading.Thread | None = None
        self.closed = False
        self.slot: AddressSlot | None = None
        """Its place in the per-address counts (released when the connection ends)."""


class SrtInput:
    """A blocking byte source over one SRT socket for PyAV; ``b""`` at the end.

    One message per ``read``: ``srt_recvmsg`` blocks in C (ctypes releases the
    GIL) until TSBPD hands over the next message, with a receive timeout so the
    stop flag and a silent peer are noticed. Measured at 20 Mbps against a
    non-blocking drain polled every 10 ms and against waiting on an SRT epoll
    (whose wait polls internally), this is the cheapest of the three.
    """

    def __init__(self, lib: LibSrt, conn: Connection, stop: threading.Event, *, idle_seconds: float) -> None:
        self._lib = lib
        self._conn = conn
        self._stop = stop
        self._idle = idle_seconds
        self._buf = ctypes.create_string_buffer(RECV_BUFFER)
        self._recv = lib.raw_recvmsg
        self._pending = b""
        self._ended = False
        self.bytes = 0
        self.messages = 0
        self.stats: libsrt.Stats | None = None
        """libsrt's counters, sampled while connected (a broken socket has none to give)."""
        lib.set_int(conn.sock, libsrt.SRTO_RCVTIMEO, POLL_MS)

    def read(self, size: int = -1) -> bytes:
        if self._pending:
            out, self._pending = self._pending[:size], self._pending[size:]
            return out
        recv, sock, buf = self._recv, self._conn.sock, self._buf
        silent_since = 0.0
        while not self._ended:
            n = recv(sock, buf, RECV_BUFFER)
            if n > 0:
                self.bytes += n
                self.messages += 1
                if self.messages % STATS_EVERY == 1:
                    self._sample_stats()
                data = buf.raw[:n]  # cheaper than ctypes.string_at (no foreign call)
                if 0 < size < n:  # PyAV asks for a whole AVIO buffer, so this is only for other callers
                    data, self._pending = data[:size], data[size:]
                return data
            gone = n < 0 and self._lib.recv_failed() is not None
            now = time.monotonic()
            silent_since = silent_since or now
            if gone or self._stop.is_set() or self._conn.closed or now - silent_since > self._idle:
                self._ended = True
        return b""

    def _sample_stats(self) -> None:
        with contextlib.suppress(SrtError):  # broken meanwhile: keep the last sample
            self.stats = self._lib.stats(self._conn.sock)

    def close(self) -> None:
        self._ended = True


class SrtOutput:
    """Writes muxed MPEG-TS as SRT messages; gives up on a peer that accepts nothing for ``stall_seconds``."""

    def __init__(self, lib: LibSrt, conn: Connection, stall_seconds: float) -> None:
        self._lib = lib
        self._conn = conn
        self._stall = stall_seconds
        self.failed = False
        self.dropped = 0
        self._stalled_since: float | None = None

    def write(self, data: bytes) -> None:
        if self.failed:
            return
        step = libsrt.TS_PAYLOAD
        for i in range(0, len(data), step):
            try:
                sent = self._lib.sendmsg(self._conn.sock, data[i : i + step])
            except SrtError:
                self.failed = True
                return
            if sent:
                self._stalled_since = None
                continue
            self.dropped += 1
            now = time.monotonic()
            if self._stalled_since is None:
                self._stalled_since = now
            elif now - self._stalled_since > self._stall:
                log.info("SRT %s: the reader accepts no data; closing it", self._conn.peer)
                self.failed = True
                return
