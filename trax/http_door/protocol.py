"""uvicorn's HTTP protocols with the door uvicorn lacks: admission caps, a head deadline, a body idle timeout.

uvicorn bounds idle keep-alive connections and, with ``limit_concurrency``, answers 503 past a number
of connections, but it accepts every connection and waits for a request head or body for ever. Here:

* **admission**: a connection over the per-address or total cap (:class:`~.admission.Admission`) is
  aborted in ``connection_made``, before uvicorn registers it, so it holds no fd past that call;
* **head deadline**: from the moment a connection waits for a request (opened, or previous response
  done, or previous body drained) the whole head must arrive within ``header_timeout_seconds`` and
  within ``max_header_bytes`` (431 past it; llhttp, unlike h11, has no limit of its own);
* **body idle timeout**: while a request body is arriving and the server is reading it, a gap of
  ``body_idle_timeout_seconds`` without a byte drops the connection; the application then sees
  ``http.disconnect`` (logged in one line by the error handler). Time the server spends not reading
  (its buffer full, or waiting to send ``100 Continue``) is not counted.

One timer per connection at most, re-armed lazily (the handle is not moved on every read).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from trax.http_door.admission import Admission
from trax.settings import HttpDoorSettings

if TYPE_CHECKING:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
else:
    _Base = object

log = logging.getLogger("trax.http_door")

Phase = Literal["head", "body", "busy"]
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 26\r\nconnection: close\r\n\r\n"
    b"Request head is too large."
)


class DoorMixin(_Base):
    """Put before one of uvicorn's protocol classes; ``admission`` and ``limits`` are set per listener."""

    admission: ClassVar[Admission]
    limits: ClassVar[HttpDoorSettings]

    _door_key: str | None = None
    _door_timer: asyncio.TimerHandle | None = None
    _head_since = 0.0
    _head_bytes = 0
    _last_read = 0.0

    # -- what the concrete parser tells us --------------------------------------------------

    def _body_pending(self) -> bool:
        """True while the current request's body is still arriving."""
        raise NotImplementedError

    def _phase(self) -> Phase:
        if self._body_pending():
            return "body"
        cycle = self.cycle
        return "head" if cycle is None or cycle.response_complete else "busy"

    # -- uvicorn's protocol interface --------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        key = self.admission.admit(transport.get_extra_info("peername"))
        if key is None:
            transport.abort()  # uvicorn never sees it: not in its connection set, no parser state
            return
        self._door_key = key
        super().connection_made(transport)
        self._enter_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._door_key is None:
            return  # refused at the door
        self.admission.release(self._door_key)
        self._door_key = None
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        before = self._phase()
        super().data_received(data)
        if self.transport.is_closing():
            return
        after = self._phase()
        if before == "head" and after != "head":
            self._stop_timer()  # the head is in: its deadline no longer applies
        if after == "head":
            if before != "head":
                self._enter_head()  # the previous request's body has just been drained
            else:
                self._head_bytes += len(data)
                if self._head_bytes > self.limits.max_header_bytes:
                    self._refuse_head()
        elif after == "body":
            self._last_read = self.loop.time()
            self._ensure_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        phase = self._phase()
        if phase == "head":
            self._enter_head()
        elif phase == "body":  # a pipelined request started, or the answered request's body is still coming
            self._last_read = self.loop.time()
            self._ensure_timer()

    # -- the timer ----------------------------------------------------------------------------

    def _enter_head(self) -> None:
        self._head_since = self.loop.time()
        self._head_bytes = 0
        self._stop_timer()
        self._ensure_timer()

    def _ensure_timer(self) -> None:
        if self._door_timer is None:
            self._door_timer = self.loop.call_at(self._due(), self._tick)

    def _stop_timer(self) -> None:
        if self._door_timer is not None:
            self._door_timer.cancel()
            self._door_timer = None

    def _due(self) -> float:
        if self._phase() == "head":
            return self._head_since + self.limits.header_timeout_seconds
        return self._last_read + self.limits.body_idle_timeout_seconds

    def _reading(self) -> bool:
        """The server is asking for the body (not paused on a full buffer, not holding back ``100 Continue``)."""
        cycle = self.cycle
        return not self.flow.read_paused and not (cycle is not None and cycle.waiting_for_100_continue)

    def _tick(self) -> None:
        self._door_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        phase, now = self._phase(), self.loop.time()
        if phase == "busy":
            return  # the application's turn; on_response_complete starts the next wait
        if phase == "body" and not self._reading():
            self._last_read = now  # not the client's fault: start the idle clock again
        elif now >= self._due():
            self._drop(phase)
            return
        self._ensure_timer()

    def _drop(self, phase: Phase) -> None:
        # debug only: an attacker controls how often this happens
        log.debug("%s: closing %s, %s timed out", self.admission.name, self._door_key, phase)
        self.transport.abort()

    def _refuse_head(self) -> None:
        log.debug(
            "%s: closing %s, request head over %d bytes",
            self.admission.name,
            self._door_key,
            self.limits.max_header_bytes,
        )
        self.transport.write(_HEAD_TOO_LARGE)
        self.transport.close()


def _httptools_class() -> type[Any]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class DoorHttpToolsProtocol(DoorMixin, HttpToolsProtocol):
        _in_body = False
        _head_size = 0

        def _body_pending(self) -> bool:
            return self._in_body

        # a head that arrives whole in one read is measured here, as the parser hands it over
        def on_message_begin(self) -> None:
            self._head_size = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count_head(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_head(len(name) + len(value) + 4)
            super().on_header(name, value)

        def _count_head(self, n: int) -> None:
            self._head_size += n
            if self._head_size > self.limits.max_header_bytes:
                # llhttp turns this into HttpParserCallbackError: uvicorn answers 400 and closes
                raise ValueError("request head too large")

        def on_headers_complete(self) -> None:
            self._in_body = True
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_body = False
            super().on_message_complete()

    return DoorHttpToolsProtocol


def _h11_class() -> type[Any]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DoorH11Protocol(DoorMixin, H11Protocol):  # type: ignore[misc]
        def _body_pending(self) -> bool:
            return bool(self.conn.their_state is h11.SEND_BODY)

    return DoorH11Protocol


def protocol_class(admission: Admission, limits: HttpDoorSettings, parser: str = "auto") -> type[asyncio.Protocol]:
    """A protocol class for one listener: uvicorn's httptools one when installed (as ``auto``), else h11."""
    if parser == "h11":
        base = _h11_class()
    else:
        try:
            base = _httptools_class()
        except ImportError:
            if parser == "httptools":
                raise
            base = _h11_class()
    cls: type[asyncio.Protocol] = type(base.__name__, (base,), {"admission": admission, "limits": limits})
    return cls
