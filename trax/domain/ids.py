"""Time-ordered, prefixed identifiers: ``<prefix>_<26 Crockford base32 chars>``.

The 26 characters are a ULID (48-bit millisecond timestamp, 80 random bits), so
sorting ids as strings sorts them by creation time. Within one millisecond the
random part is incremented instead of redrawn, which keeps ids minted by one
process strictly increasing; keyset pagination relies on that.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(CROCKFORD)}

PREFIXES = frozenset({"acct", "studio", "src", "dst", "conn", "msg", "asset", "upl", "key", "whk", "evt", "req", "sk"})
_ID_RE = re.compile(r"^([a-z]+)_([0-9A-HJKMNP-TV-Z]{26})$")


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


class IdGenerator:
    """Strictly increasing ULIDs for one process; safe to share between threads."""

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        self._clock: Callable[[], int] = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    def ulid(self) -> str:
        with self._lock:
            now = int(self._clock())
            if now <= self._last_ms:
                now = self._last_ms
                rand = self._last_rand + 1
                if rand >= 1 << 80:  # 2^80 ids in one millisecond: borrow the next one
                    now += 1
                    rand = int.from_bytes(os.urandom(10), "big") >> 1
            else:
                # keep the top bit clear so increments within a millisecond never overflow
                rand = int.from_bytes(os.urandom(10), "big") >> 1
            self._last_ms, self._last_rand = now, rand
        return _encode(now, 10) + _encode(rand, 16)

    def new(self, prefix: str) -> str:
        return f"{prefix}_{self.ulid()}"


def parse_id(value: str) -> tuple[str, int]:
    """Return ``(prefix, millisecond timestamp)`` of an id, or raise ``ValueError``."""
    m = _ID_RE.match(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(f"not a trax id: {value!r}")
    ts = 0
    for ch in m.group(2)[:10]:
        ts = (ts << 5) | _DECODE[ch]
    return m.group(1), ts


def looks_like_id(value: str, prefix: str) -> bool:
    m = _ID_RE.match(value) if isinstance(value, str) else None
    return bool(m) and m.group(1) == prefix  # type: ignore[union-attr]
