"""Keyset pages and their opaque, tamper-evident cursors (docs/api.md, "Pages")."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from trax.domain.errors import InvalidRequest
from trax.domain.keyed_hash import fit_key, keyed_hash

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_MAC_LEN = 12


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    data: list[T]
    next_cursor: str | None = None


PLAIN_LIMIT = re.compile(r"[1-9][0-9]{0,8}")
"""The only written form of a page size: plain decimal digits, no sign, no leading zero, no exponent or
fraction (``1e3``, ``5.0``, ``+5``, `` 5`` are refused, not read as numbers), at most nine digits."""


def parse_limit(written: str) -> int:
    """The page size a query's ``limit`` value states (then clamped by :func:`clamp_limit`)."""
    if not PLAIN_LIMIT.fullmatch(written):
        raise InvalidRequest(
            f"limit must be a whole number from 1 to 999999999 in plain digits (above {MAX_LIMIT} it is clamped).",
            param="limit",
        )
    return int(written)


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidRequest("limit must be an integer.", param="limit")
    if limit < 1:
        raise InvalidRequest("limit must be at least 1.", param="limit")
    return min(limit, MAX_LIMIT)


class CursorCodec:
    """Encodes ``(list scope, last id)`` as base64url behind a 96-bit keyed hash.

    The scope (e.g. ``studio`` or ``source:studio_...``) stops a cursor taken
    from one list being replayed on another.
    """

    def __init__(self, key: bytes) -> None:
        self._key = fit_key(key)

    def _mac(self, payload: bytes) -> bytes:
        return keyed_hash(self._key, payload, person=b"trax-cursor", size=_MAC_LEN)

    def encode(self, scope: str, last_id: str) -> str:
        payload = f"{scope}\x00{last_id}".encode()
        return base64.urlsafe_b64encode(self._mac(payload) + payload).rstrip(b"=").decode("ascii")

    def decode(self, scope: str, cursor: str | None) -> str | None:
        """The last id the cursor stands for; ``None`` for an absent or empty cursor."""
        if cursor is None or cursor == "":
            return None
        bad = InvalidRequest("cursor is malformed or was not issued for this list.", param="cursor")
        if not isinstance(cursor, str) or len(cursor) > 512:
            raise bad
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise bad from None
        # The decoder skips stray characters and ignores spare bits, so several strings
        # decode alike; accepting only the one we would issue makes any edit a refusal.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != cursor:
            raise bad
        mac, payload = raw[:_MAC_LEN], raw[_MAC_LEN:]
        if len(mac) != _MAC_LEN or not hmac.compare_digest(mac, self._mac(payload)):
            raise bad
        got_scope, _, last_id = payload.decode("utf-8", "replace").partition("\x00")
        if got_scope != scope or not last_id:
            raise bad
        return last_id
