"""A direct path for hot list routes: the gate answers plain queries without the Litestar handler.

A list route may declare ``fast=FastList(...)`` (see :func:`trax.server.routes.route`).
For a query the fast path understands exactly — only ``limit`` (digits, no sign
or leading zero) and ``cursor`` (base64url characters), each at most once —
the gate calls the same service use case the handler would and sends the
encoded page itself, skipping Litestar's parameter parsing, dependency
injection and response building. Every other query (a repeated or unknown
parameter, ``limit=0``, ``limit=abc``, percent-escapes, ...) goes through the
declared Litestar handler, so validation errors keep exactly their shape.
The route stays a normal Litestar route for routing, OpenAPI, ``before_send``
and the exception handler.

Page bodies are cached by the identity of the storage rows they were built
from (:class:`PageBodies`); see docs/api.md "Read cache" for why that is exact.
"""

from __future__ import annotations

import operator
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from trax.domain.pages import PLAIN_LIMIT, Page, parse_limit
from trax.services import Principal, Services

_LIMIT = re.compile(PLAIN_LIMIT.pattern.encode())
_CURSOR = re.compile(rb"[A-Za-z0-9_-]{0,512}")
_encoder = msgspec.json.Encoder()

JSON_HEADERS = (b"content-type", b"application/json")


def plain_list_query(query: bytes) -> tuple[int | None, str] | None:
    """``(limit, cursor)`` for a query the fast path handles exactly, else ``None``."""
    limit: int | None = None
    cursor: str | None = None
    if not query:
        return None, ""
    for part in query.split(b"&"):
        name, eq, value = part.partition(b"=")
        if not eq:
            return None
        if name == b"limit" and limit is None and _LIMIT.fullmatch(value):
            limit = int(value)
        elif name == b"cursor" and cursor is None and _CURSOR.fullmatch(value):
            cursor = value.decode("ascii")
        else:
            return None
    return limit, cursor or ""


def check_page_size(query: bytes) -> None:
    """Every ``limit`` in ``query`` (decoded as Litestar decodes it) is a plain page size, else 400.

    Litestar reads an ``int`` parameter leniently (``1e3`` → 1000, ``5.0`` → 5); list routes run this
    first so the one written form (:data:`~trax.domain.pages.PLAIN_LIMIT`) holds on every path.
    """
    if b"limit" not in query and b"%" not in query:  # the common case: nothing to decode
        return
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "limit":
            parse_limit(value)


class PageBodies:
    """Encoded page bodies keyed by the identity of the rows (and the cursor) they were built from.

    A hit needs the very same row objects, compared one by one with ``is``
    (the key, first and last row ids, only finds the candidate); an entry
    holds its rows, so they stay alive and distinct. Storage rows are never
    mutated (a change is a new object), so the same rows mean the same body.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def body(self, rows: Sequence[Any], next_cursor: str | None, build: Callable[[], msgspec.Struct]) -> bytes:
        # a short key finds the candidate; the row-by-row identity check makes the hit exact
        key = (next_cursor, len(rows), id(rows[0]), id(rows[-1])) if rows else (next_cursor, 0)
        hit = self._entries.get(key)
        if hit is not None and all(map(operator.is_, rows, hit[0])):
            self._entries.move_to_end(key)
            return hit[1]
        body = _encoder.encode(build())
        self._entries[key] = (tuple(rows), body)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return body


@dataclass(frozen=True, slots=True)
class FastList:
    """How to answer one list route directly: the use case, and the row → wire conversion."""

    fetch: Callable[[Services, Principal, int | None, str], Awaitable[Page[Any]]]
    to_wire: Callable[[Any], Any]
    page: type[msgspec.Struct]

    async def body(self, services: Services, principal: Principal, query: bytes, cache: PageBodies) -> bytes | None:
        """The response body, or ``None`` when the query needs the full handler."""
        parsed = plain_list_query(query)
        if parsed is None:
            return None
        page = await self.fetch(services, principal, parsed[0], parsed[1])
        rows, to_wire, page_type = page.data, self.to_wire, self.page
        return cache.body(
            rows, page.next_cursor, lambda: page_type(data=[to_wire(r) for r in rows], next_cursor=page.next_cursor)
        )
