"""Connections per client address, for listeners that admit callers before they authorise.

A caller without a credential must not be able to take every slot of a listener: each address
(an IPv4 address, or an IPv6 /64, which one host usually controls whole) gets a cap on its
connections and a smaller one on those not authorised yet. Entries exist only while the address
has a connection, so the table is bounded by the listener's own connection cap.
"""

from __future__ import annotations

import threading

from trax.domain.addresses import address_key


class AddressSlot:
    """One admitted connection; ``authorised`` and ``release`` may be called more than once."""

    __slots__ = ("_authorised", "_released", "_slots", "key")

    def __init__(self, slots: AddressSlots, key: str) -> None:
        self._slots = slots
        self.key = key
        self._authorised = False
        self._released = False

    def authorised(self) -> None:
        """The connection proved a credential: it stops counting against the unauthorised cap."""
        if not self._authorised and not self._released:
            self._authorised = True
            self._slots._authorise(self.key)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._slots._release(self.key, self._authorised)


class AddressSlots:
    """Counts per address; ``admit`` refuses (``None``) an address at either cap. Thread-safe (SRT's threads)."""

    def __init__(self, max_per_address: int, max_unauthorised_per_address: int) -> None:
        self.max_per_address = max_per_address
        self.max_unauthorised = max_unauthorised_per_address
        self._counts: dict[str, list[int]] = {}  # key -> [connections, of which unauthorised]
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<AddressSlots addresses={len(self._counts)}>"

    def __len__(self) -> int:
        return len(self._counts)

    def admit(self, host: str) -> AddressSlot | None:
        key = address_key(host)
        with self._lock:
            counts = self._counts.get(key)
            if counts is None:
                counts = self._counts[key] = [0, 0]
            if counts[0] >= self.max_per_address or counts[1] >= self.max_unauthorised:
                return None
            counts[0] += 1
            counts[1] += 1
        return AddressSlot(self, key)

    def unauthorised(self, host: str) -> int:
        """Connections from ``host``'s address not authorised yet."""
        counts = self._counts.get(address_key(host))
        return counts[1] if counts else 0

    def connections(self, host: str) -> int:
        counts = self._counts.get(address_key(host))
        return counts[0] if counts else 0

    def _authorise(self, key: str) -> None:
        with self._lock:
            counts = self._counts.get(key)
            if counts is not None and counts[1] > 0:
                counts[1] -= 1

    def _release(self, key: str, authorised: bool) -> None:
        with self._lock:
            counts = self._counts.get(key)
            if counts is None:
                return
            counts[0] -= 1
            if not authorised:
                counts[1] -= 1
            if counts[0] <= 0:
                del self._counts[key]
