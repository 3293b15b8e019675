"""A small ctypes binding to the system libsrt (Debian ``libsrt1.5-openssl``).

No maintained Python binding to libsrt exists that exposes the listen callback
(the hook that sees a caller's streamid during the handshake, before accept),
so this module binds the few C functions the SRT transport needs. Constants
are those of ``srt.h`` / ``access_control.h`` of libsrt 1.5.

Nothing is loaded at import: :func:`load` opens the shared library on first use.
Every call that can fail raises :class:`SrtError` with libsrt's own message.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

LIBRARY_NAMES = ("libsrt.so.1.5", "libsrt-gnutls.so.1.5", "libsrt.so")

SRT_ERROR = -1
SRT_INVALID_SOCK = -1

# socket options (SRT_SOCKOPT)
SRTO_SNDSYN = 1
SRTO_RCVSYN = 2
SRTO_LINGER = 7
SRTO_SNDTIMEO = 13
SRTO_RCVTIMEO = 14
SRTO_REUSEADDR = 15
SRTO_STATE = 17
SRTO_LATENCY = 23
SRTO_PASSPHRASE = 26
SRTO_PBKEYLEN = 27
SRTO_CONNTIMEO = 36
SRTO_RCVLATENCY = 43
SRTO_PEERLATENCY = 44
SRTO_STREAMID = 46
SRTO_PAYLOADSIZE = 49
SRTO_TRANSTYPE = 50
SRTO_ENFORCEDENCRYPTION = 53
SRTO_PEERIDLETIMEO = 55

SRTT_LIVE = 0

# socket states (SRT_SOCKSTATUS)
SRTS_CONNECTED = 5
SRTS_BROKEN = 6
SRTS_CLOSING = 7
SRTS_CLOSED = 8
SRTS_NONEXIST = 9

# error codes (SRT_ERRNO) this module tells apart
SRT_EASYNCSND = 6001
SRT_EASYNCRCV = 6002
SRT_ETIMEOUT = 6003

# epoll events
SRT_EPOLL_IN = 0x1
SRT_EPOLL_OUT = 0x4
SRT_EPOLL_ERR = 0x8

# rejection reasons an application may set (access_control.h)
REJX_BAD_REQUEST = 1400
REJX_UNAUTHORIZED = 1401
REJX_OVERLOAD = 1402
REJX_FORBIDDEN = 1403
REJX_NOTFOUND = 1404
REJX_BAD_MODE = 1405
REJX_CONFLICT = 1409
REJX_ISE = 1500
REJX_DOWN = 1503
REJX_VERSION = 1505

LIVE_MAX_PAYLOAD = 1456
"""Largest payload of one live-mode message (MTU 1500 minus UDP and SRT headers)."""
TS_PAYLOAD = 1316
"""Seven 188-byte MPEG-TS packets: the payload size live SRT callers use."""

_LOG_ERR = 3

ListenCallback = Callable[[int, int, "str | None", bytes | None], int]
"""``(socket, hs_version, peer, streamid) -> 0 to accept / -1 to reject``."""

_LISTEN_FN = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
)
_LOG_FN = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p
)


class SrtError(OSError):
    """A libsrt call failed; ``code`` is libsrt's SRT_ERRNO."""

    def __init__(self, call: str, code: int, message: str) -> None:
        super().__init__(f"{call}: {message} (srt error {code})")
        self.call = call
        self.code = code


class SrtUnavailable(RuntimeError):
    """The shared library is not installed."""


class _SockaddrIn(ctypes.Structure):
    _fields_ = [
        ("family", ctypes.c_ushort),
        ("port", ctypes.c_ubyte * 2),
        ("addr", ctypes.c_ubyte * 4),
        ("zero", ctypes.c_ubyte * 8),
    ]


class _SockaddrIn6(ctypes.Structure):
    _fields_ = [
        ("family", ctypes.c_ushort),
        ("port", ctypes.c_ubyte * 2),
        ("flowinfo", ctypes.c_uint32),
        ("addr", ctypes.c_ubyte * 16),
        ("scope_id", ctypes.c_uint32),
    ]


class _PerfMonHead(ctypes.Structure):
    """The leading fields of ``struct CBytePerfMon`` (srt.h, libsrt 1.5)."""

    _fields_ = [
        ("msTimeStamp", ctypes.c_int64),
        ("pktSentTotal", ctypes.c_int64),
        ("pktRecvTotal", ctypes.c_int64),
        ("pktSndLossTotal", ctypes.c_int),
        ("pktRcvLossTotal", ctypes.c_int),
        ("pktRetransTotal", ctypes.c_int),
        ("pktSentACKTotal", ctypes.c_int),
        ("pktRecvACKTotal", ctypes.c_int),
        ("pktSentNAKTotal", ctypes.c_int),
        ("pktRecvNAKTotal", ctypes.c_int),
        ("usSndDurationTotal", ctypes.c_int64),
        ("pktSndDropTotal", ctypes.c_int),
        ("pktRcvDropTotal", ctypes.c_int),
        ("pktRcvUndecryptTotal", ctypes.c_int),
        ("byteSentTotal", ctypes.c_uint64),
        ("byteRecvTotal", ctypes.c_uint64),
    ]


class _Linger(ctypes.Structure):
    _fields_ = [("onoff", ctypes.c_int), ("linger", ctypes.c_int)]


class _Storage(ctypes.Structure):
    _fields_ = [("raw", ctypes.c_ubyte * 128)]


def sockaddr(host: str, port: int) -> tuple[ctypes.Structure, int]:
    """A C ``sockaddr`` for a numeric IPv4 or IPv6 address (no name resolution)."""
    ip = ipaddress.ip_address(host)
    pb = (ctypes.c_ubyte * 2)(*port.to_bytes(2, "big"))
    if ip.version == 4:
        sa4 = _SockaddrIn(socket.AF_INET, pb, (ctypes.c_ubyte * 4)(*ip.packed))
        return sa4, ctypes.sizeof(sa4)
    sa6 = _SockaddrIn6(socket.AF_INET6, pb, 0, (ctypes.c_ubyte * 16)(*ip.packed), 0)
    return sa6, ctypes.sizeof(sa6)


def peer_string(address: int | None) -> str | None:
    """``host:port`` of a C ``sockaddr*`` (``None`` for a null pointer or another family)."""
    if not address:
        return None
    family = ctypes.c_ushort.from_address(address).value
    if family == socket.AF_INET:
        a4 = _SockaddrIn.from_address(address)
        return f"{ipaddress.IPv4Address(bytes(a4.addr))}:{int.from_bytes(bytes(a4.port), 'big')}"
    if family == socket.AF_INET6:
        a6 = _SockaddrIn6.from_address(address)
        return f"[{ipaddress.IPv6Address(bytes(a6.addr))}]:{int.from_bytes(bytes(a6.port), 'big')}"
    return None


@dataclass(frozen=True)
class Stats:
    """The counters of ``srt_bstats`` this project reads."""

    packets_received: int
    packets_lost: int
    packets_dropped: int
    bytes_received: int


class LibSrt:
    """The loaded library with typed wrappers. One per process (see :func:`load`)."""

    def __init__(self, cdll: ctypes.CDLL) -> None:
        self._c = cdll
        self._callbacks: list[object] = []
        self._handlers: dict[int, ListenCallback] = {}
        self._callbacks_lock = threading.Lock()
        self._log_handler: object | None = None
        c = cdll
        c.srt_startup.restype = ctypes.c_int
        c.srt_cleanup.restype = ctypes.c_int
        c.srt_create_socket.restype = ctypes.c_int
        c.srt_bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        c.srt_listen.argtypes = [ctypes.c_int, ctypes.c_int]
        c.srt_accept.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        c.srt_getsockname.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        c.srt_accept.restype = ctypes.c_int
        c.srt_listen_callback.argtypes = [ctypes.c_int, _LISTEN_FN, ctypes.c_void_p]
        c.srt_connect.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        c.srt_close.argtypes = [ctypes.c_int]
        c.srt_setsockflag.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        c.srt_getsockflag.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        c.srt_recvmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        c.srt_sendmsg.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        c.srt_getlasterror.argtypes = [ctypes.POINTER(ctypes.c_int)]
        c.srt_getlasterror_str.restype = ctypes.c_char_p
        c.srt_getsockstate.argtypes = [ctypes.c_int]
        c.srt_getsockstate.restype = ctypes.c_int
        c.srt_setrejectreason.argtypes = [ctypes.c_int, ctypes.c_int]
        c.srt_getrejectreason.argtypes = [ctypes.c_int]
        c.srt_rejectreason_str.argtypes = [ctypes.c_int]
        c.srt_rejectreason_str.restype = ctypes.c_char_p
        c.srt_getversion.restype = ctypes.c_uint32
        c.srt_epoll_create.restype = ctypes.c_int
        c.srt_epoll_add_usock.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        c.srt_epoll_remove_usock.argtypes = [ctypes.c_int, ctypes.c_int]
        c.srt_epoll_wait.argtypes = [
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        c.srt_epoll_release.argtypes = [ctypes.c_int]
        c.srt_setloglevel.argtypes = [ctypes.c_int]
        c.srt_setloghandler.argtypes = [ctypes.c_void_p, _LOG_FN]
        c.srt_bstats.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
        c.srt_getsndbuffer.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]

    @property
    def version(self) -> str:
        v = int(self._c.srt_getversion())
        return f"{v >> 16}.{(v >> 8) & 0xFF}.{v & 0xFF}"

    # --- errors ------------------------------------------------------------

    def last_error(self) -> tuple[int, str]:
        code = int(self._c.srt_getlasterror(None))
        raw = self._c.srt_getlasterror_str()
        return code, (raw or b"").decode("utf-8", "replace")

    def _fail(self, call: str) -> SrtError:
        code, message = self.last_error()
        return SrtError(call, code, message)

    def _check(self, result: int, call: str) -> int:
        if result == SRT_ERROR:
            raise self._fail(call)
        return result

    # --- library lifecycle ---------------------------------------------------

    def startup(self) -> None:
        """Reference-counted inside libsrt: pair every call with :meth:`cleanup`."""
        self._check(self._c.srt_startup(), "srt_startup")
        if self._log_handler is None:
            self._install_log_handler()

    def cleanup(self) -> None:
        self._c.srt_cleanup()

    def _install_log_handler(self) -> None:
        # libsrt writes to stderr by default; route its errors into logging instead
        srt_log = logging.getLogger("trax.ingest.srt.libsrt")

        def handler(_o: object, level: int, _f: object, _ln: int, area: bytes | None, msg: bytes | None) -> None:
            try:
                text = (msg or b"").decode("utf-8", "replace").strip()
                srt_log.debug("libsrt[%s] level=%d %s", (area or b"").decode("ascii", "replace"), level, text)
            except Exception:  # never raise into C
                pass

        self._log_handler = _LOG_FN(handler)
        self._c.srt_setloghandler(None, self._log_handler)
        self._c.srt_setloglevel(_LOG_ERR)

    # --- sockets ---------------------------------------------------------------

    def create_socket(self) -> int:
        return self._check(self._c.srt_create_socket(), "srt_create_socket")

    def close(self, sock: int) -> None:
        self._c.srt_close(sock)

    def set_int(self, sock: int, opt: int, value: int) -> None:
        v = ctypes.c_int(value)
        self._check(self._c.srt_setsockflag(sock, opt, ctypes.byref(v), ctypes.sizeof(v)), f"setsockflag({opt})")

    def set_bool(self, sock: int, opt: int, value: bool) -> None:
        v = ctypes.c_bool(value)
        self._check(self._c.srt_setsockflag(sock, opt, ctypes.byref(v), ctypes.sizeof(v)), f"setsockflag({opt})")

    def set_linger(self, sock: int, seconds: int) -> None:
        """How long ``close`` waits for unacknowledged data (live mode default: not at all)."""
        v = _Linger(1 if seconds > 0 else 0, seconds)
        result = self._c.srt_setsockflag(sock, SRTO_LINGER, ctypes.byref(v), ctypes.sizeof(v))
        self._check(result, "setsockflag(linger)")

    def set_bytes(self, sock: int, opt: int, value: bytes) -> None:
        buf = ctypes.create_string_buffer(value, len(value))
        self._check(self._c.srt_setsockflag(sock, opt, buf, len(value)), f"setsockflag({opt})")

    def get_int(self, sock: int, opt: int) -> int:
        v = ctypes.c_int(0)
        n = ctypes.c_int(ctypes.sizeof(v))
        self._check(self._c.srt_getsockflag(sock, opt, ctypes.byref(v), ctypes.byref(n)), f"getsockflag({opt})")
        return v.value

    def get_bytes(self, sock: int, opt: int, size: int = 768) -> bytes:
        buf = ctypes.create_string_buffer(size)
        n = ctypes.c_int(size)
        self._check(self._c.srt_getsockflag(sock, opt, buf, ctypes.byref(n)), f"getsockflag({opt})")
        return buf.raw[: n.value]

    def bind(self, sock: int, host: str, port: int) -> None:
        sa, size = sockaddr(host, port)
        self._check(self._c.srt_bind(sock, ctypes.byref(sa), size), "srt_bind")

    def local_port(self, sock: int) -> int:
        """The port a bound socket got (for a bind to port 0)."""
        storage = _Storage()
        n = ctypes.c_int(ctypes.sizeof(storage))
        self._check(self._c.srt_getsockname(sock, ctypes.byref(storage), ctypes.byref(n)), "srt_getsockname")
        peer = peer_string(ctypes.addressof(storage)) or ":0"
        return int(peer.rsplit(":", 1)[1])

    def listen(self, sock: int, backlog: int) -> None:
        self._check(self._c.srt_listen(sock, backlog), "srt_listen")

    def accept(self, sock: int) -> tuple[int, str | None]:
        storage = _Storage()
        n = ctypes.c_int(ctypes.sizeof(storage))
        ns = self._check(self._c.srt_accept(sock, ctypes.byref(storage), ctypes.byref(n)), "srt_accept")
        return ns, peer_string(ctypes.addressof(storage))

    def connect(self, sock: int, host: str, port: int) -> None:
        sa, size = sockaddr(host, port)
        self._check(self._c.srt_connect(sock, ctypes.byref(sa), size), "srt_connect")

    def state(self, sock: int) -> int:
        return int(self._c.srt_getsockstate(sock))

    def recvmsg(self, sock: int, buf: ctypes.Array[ctypes.c_char]) -> int:
        """Bytes received into ``buf``; 0 on a receive timeout; raises when the connection is gone."""
        n = int(self._c.srt_recvmsg(sock, buf, len(buf)))
        if n == SRT_ERROR:
            if self._c.srt_getlasterror(None) in (SRT_EASYNCRCV, SRT_ETIMEOUT):  # the common case: no message
                return 0
            raise self._fail("srt_recvmsg")
        return n

    @property
    def raw_recvmsg(self) -> Callable[[int, ctypes.Array[ctypes.c_char], int], int]:
        """``srt_recvmsg`` itself, for a receive loop that runs per message; check -1 with :meth:`recv_failed`."""
        fn: Callable[[int, ctypes.Array[ctypes.c_char], int], int] = self._c.srt_recvmsg
        return fn

    def recv_failed(self, call: str = "srt_recvmsg") -> SrtError | None:
        """After a receive returned -1: ``None`` for "nothing yet" (timeout, would block), else the error."""
        if self._c.srt_getlasterror(None) in (SRT_EASYNCRCV, SRT_ETIMEOUT):
            return None
        return self._fail(call)

    def sendmsg(self, sock: int, data: bytes) -> int:
        """Bytes queued; 0 when a non-blocking socket's send buffer is full or the send timed out."""
        n = int(self._c.srt_sendmsg(sock, data, len(data), -1, 0))
        if n == SRT_ERROR:
            err = self._fail("srt_sendmsg")
            if err.code in (SRT_EASYNCSND, SRT_ETIMEOUT):
                return 0
            raise err
        return n

    def unacknowledged(self, sock: int) -> int:
        """Bytes sent on ``sock`` that the peer has not acknowledged yet."""
        blocks = ctypes.c_size_t(0)
        size = ctypes.c_size_t(0)
        self._check(self._c.srt_getsndbuffer(sock, ctypes.byref(blocks), ctypes.byref(size)), "srt_getsndbuffer")
        return int(size.value)

    def set_reject_reason(self, sock: int, reason: int) -> None:
        self._c.srt_setrejectreason(sock, reason)

    def reject_reason(self, sock: int) -> int:
        return int(self._c.srt_getrejectreason(sock))

    def reject_reason_str(self, reason: int) -> str:
        raw = self._c.srt_rejectreason_str(reason)
        return (raw or b"").decode("utf-8", "replace")

    def stats(self, sock: int) -> Stats:
        # SRT_TRACEBSTATS is large; libsrt fills the whole struct, so give it room beyond the prefix read here
        buf = (ctypes.c_ubyte * 1024)()
        self._check(self._c.srt_bstats(sock, buf, 0), "srt_bstats")
        head = _PerfMonHead.from_buffer(buf)
        recv, lost, dropped, brecv = head.pktRecvTotal, head.pktRcvLossTotal, head.pktRcvDropTotal, head.byteRecvTotal
        return Stats(packets_received=recv, packets_lost=lost, packets_dropped=dropped, bytes_received=brecv)

    # --- listen callback -----------------------------------------------------------

    def set_listen_callback(self, listener: int, callback: ListenCallback) -> None:
        """Install ``callback`` to accept (return 0) or reject (return -1) each caller during its handshake.

        The callback runs on libsrt's receiving thread, so it must be fast and must
        not block; an exception escaping it would reach C, so it is caught here and
        turns into a rejection. The C function object stays referenced for the
        life of the process (libsrt may still hold its pointer for a moment after
        the listener closes); :meth:`forget_listen_callback` only disarms it.
        """
        handlers = self._handlers

        def trampoline(_opaque: object, ns: int, hs_version: int, peer: int | None, streamid: bytes | None) -> int:
            try:
                handler = handlers.get(listener)
                if handler is None:  # the listener is closing
                    self._c.srt_setrejectreason(ns, REJX_OVERLOAD)
                    return -1
                return handler(ns, hs_version, peer_string(peer), streamid)
            except BaseException:
                try:
                    log.exception("the SRT listen callback failed; rejecting the caller")
                    self._c.srt_setrejectreason(ns, REJX_ISE)
                except BaseException:
                    pass
                return -1

        fn = _LISTEN_FN(trampoline)
        with self._callbacks_lock:
            handlers[listener] = callback
            self._callbacks.append(fn)
        self._check(self._c.srt_listen_callback(listener, fn, None), "srt_listen_callback")

    def forget_listen_callback(self, listener: int) -> None:
        """Stop calling the Python callback of ``listener`` (late handshakes are rejected)."""
        with self._callbacks_lock:
            self._handlers.pop(listener, None)

    # --- epoll -------------------------------------------------------------------

    def epoll_create(self) -> int:
        return self._check(self._c.srt_epoll_create(), "srt_epoll_create")

    def epoll_add(self, eid: int, sock: int, events: int) -> None:
        ev = ctypes.c_int(events)
        self._check(self._c.srt_epoll_add_usock(eid, sock, ctypes.byref(ev)), "srt_epoll_add_usock")

    def epoll_remove(self, eid: int, sock: int) -> None:
        self._c.srt_epoll_remove_usock(eid, sock)

    def epoll_wait_readable(self, eid: int, timeout_ms: int, max_events: int = 16) -> list[int]:
        """Sockets ready to read (or accept) within ``timeout_ms``; empty on timeout."""
        ready = (ctypes.c_int * max_events)()
        n = ctypes.c_int(max_events)
        result = int(
            self._c.srt_epoll_wait(eid, ready, ctypes.byref(n), None, None, timeout_ms, None, None, None, None)
        )
        if result <= 0:
            return []
        return [ready[i] for i in range(min(n.value, max_events))]

    def epoll_release(self, eid: int) -> None:
        self._c.srt_epoll_release(eid)


_loaded: dict[str, LibSrt] = {}
_load_lock = threading.Lock()


def load() -> LibSrt:
    """The process-wide binding, opened on first use; raises :class:`SrtUnavailable` if libsrt is missing."""
    with _load_lock:
        lib = _loaded.get("lib")
        if lib is not None:
            return lib
        names = [*LIBRARY_NAMES]
        found = ctypes.util.find_library("srt")
        if found:
            names.append(found)
        for name in names:
            try:
                cdll = ctypes.CDLL(name)
            except OSError:
                continue
            lib = LibSrt(cdll)
            _loaded["lib"] = lib
            return lib
        raise SrtUnavailable("libsrt 1.5 is not installed (Debian: apt-get install libsrt1.5-openssl)")


def available() -> bool:
    try:
        load()
    except SrtUnavailable:
        return False
    return True
