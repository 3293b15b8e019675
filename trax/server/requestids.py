"""Request ids: ``req_`` + a ULID (48-bit millisecond time, 80-bit tail), minted once per request.

Entity ids come from :class:`trax.domain.ids.IdGenerator` (a lock, ``urandom``
each millisecond, a per-character encoding loop). A request id is minted on
every request, so this generator keeps it cheap: the time part is encoded once
per millisecond, and the tail is a random start plus a counter, encoded ten bits
(two characters) per table lookup. Ids never repeat within a process; across
processes the random start (80 bits) keeps them apart. Request ids are
correlation handles, not secrets, so a counter tail is fine.
"""

from __future__ import annotations

import os
import time

from trax.domain.ids import CROCKFORD

_PAIRS = tuple(a + b for a in CROCKFORD for b in CROCKFORD)  # 10 bits -> 2 characters
_TAIL = (1 << 80) - 1


def encode_ulid(ms: int, tail: int) -> str:
    """A 48-bit millisecond time and an 80-bit tail as 26 Crockford base32 characters."""
    return encode_time(ms) + encode_tail(tail)


def encode_time(ms: int) -> str:
    # 50 bits (10 characters) hold the 48-bit time; the top two are zero
    p = _PAIRS
    return p[ms >> 40 & 1023] + p[ms >> 30 & 1023] + p[ms >> 20 & 1023] + p[ms >> 10 & 1023] + p[ms & 1023]


def encode_tail(v: int) -> str:
    p = _PAIRS
    return (
        p[v >> 70 & 1023]
        + p[v >> 60 & 1023]
        + p[v >> 50 & 1023]
        + p[v >> 40 & 1023]
        + p[v >> 30 & 1023]
        + p[v >> 20 & 1023]
        + p[v >> 10 & 1023]
        + p[v & 1023]
    )


class RequestIds:
    """Unique, time-ordered ``req_<ULID>`` ids; used from the event loop only."""

    def __init__(self) -> None:
        self._tail = int.from_bytes(os.urandom(10), "big")
        self._ms = -1
        self._prefix = ""

    def new(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            self._ms, self._prefix = ms, "req_" + encode_time(ms)
        self._tail = tail = (self._tail + 1) & _TAIL
        return self._prefix + encode_tail(tail)
