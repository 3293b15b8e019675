"""Which connections an HTTP listener takes: a cap per client address and one for the whole listener.

Counting happens when a connection is accepted, before any byte is parsed, so a flood from one address
costs one ``accept`` and one ``close`` per excess connection and never a file descriptor held open.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from trax.domain.addresses import address_key as client_key

log = logging.getLogger("trax.http_door")

_WARN_EVERY_SECONDS = 10.0


def address_key(peer: Any) -> str:
    """The bucket of a peer (``transport.get_extra_info("peername")``): its IPv4 address or IPv6 /64."""
    if not isinstance(peer, tuple) or not peer:
        return "-"  # a Unix socket: one local client
    return client_key(str(peer[0]))


class Admission:
    """Open-connection counts of one listener; ``admit`` on accept, ``release`` on close.

    The per-address table only holds addresses with an open connection, so it never has more
    entries than ``max_total`` (attacker-chosen keys are bounded by the global cap).
    """

    def __init__(self, name: str, *, max_total: int, max_per_address: int) -> None:
        self.name = name
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.total = 0
        self._by_address: dict[str, int] = {}
        self._refused = 0
        self._warned_at = -_WARN_EVERY_SECONDS

    def __repr__(self) -> str:
        return f"<Admission {self.name} open={self.total}/{self.max_total} addresses={len(self._by_address)}>"

    def open_from(self, key: str) -> int:
        return self._by_address.get(key, 0)

    def admit(self, peer: Any) -> str | None:
        """The peer's bucket when it may open one more connection (now counted), else ``None``."""
        key = address_key(peer)
        held = self._by_address.get(key, 0)
        if self.total >= self.max_total or held >= self.max_per_address:
            self._note_refusal(key, held)
            return None
        self._by_address[key] = held + 1
        self.total += 1
        return key

    def release(self, key: str) -> None:
        self.total -= 1
        held = self._by_address[key] - 1
        if held:
            self._by_address[key] = held
        else:
            del self._by_address[key]

    def _note_refusal(self, key: str, held: int) -> None:
        # a flood must not become a log flood: one line per interval, with the count since the last
        self._refused += 1
        now = time.monotonic()
        if now - self._warned_at < _WARN_EVERY_SECONDS:
            return
        which = "per-address" if held >= self.max_per_address else "total"
        log.warning(
            "%s: refused %d connection(s) over the %s cap (latest from %s; %d open)",
            self.name,
            self._refused,
            which,
            key,
            self.total,
        )
        self._refused = 0
        self._warned_at = now
