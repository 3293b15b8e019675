"""Concurrent WHIP/WHEP sessions per credential and per account.

A slot is taken when an offer is admitted, before any await (so a burst of parallel POSTs
cannot all pass the check), and given back when the offer fails or the session ends.
Counters exist only for credentials and accounts with a live or pending session, so the
tables are bounded by ``max_sessions``. Credentials are keyed by their SHA-256, never kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from trax.domain.errors import RateLimited

K = TypeVar("K", str, bytes)


class SessionQuota:
    def __init__(self, per_credential: int, per_account: int, *, retry_after: float) -> None:
        self.per_credential = per_credential
        self.per_account = per_account
        self._retry_after = str(max(1, math.ceil(retry_after)))
        self._by_credential: dict[bytes, int] = {}
        self._by_account: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<SessionQuota credentials={len(self._by_credential)} accounts={len(self._by_account)}>"

    def reserve(self, credential: bytes, account: str | None) -> Callable[[], None]:
        """Take one slot for ``credential`` (a digest) and ``account``; the returned call gives it back (once).

        Raises ``RateLimited`` (429, with ``Retry-After``) when either is at its cap.
        """
        if self._by_credential.get(credential, 0) >= self.per_credential:
            raise RateLimited(
                f"This credential already has {self.per_credential} WebRTC sessions open; end one or use another.",
                headers={"Retry-After": self._retry_after},
            )
        if account is not None and self._by_account.get(account, 0) >= self.per_account:
            raise RateLimited(
                f"This account already has {self.per_account} WebRTC sessions open; retry later.",
                headers={"Retry-After": self._retry_after},
            )
        self._by_credential[credential] = self._by_credential.get(credential, 0) + 1
        if account is not None:
            self._by_account[account] = self._by_account.get(account, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            _decrement(self._by_credential, credential)
            if account is not None:
                _decrement(self._by_account, account)

        return release


def _decrement(counts: dict[K, int], key: K) -> None:
    n = counts.get(key, 0) - 1
    if n <= 0:
        counts.pop(key, None)
    else:
        counts[key] = n
