"""One keyset-page helper shared by every list use case."""

from __future__ import annotations

from typing import TypeVar

from trax.domain.base import Entity
from trax.domain.pages import Page, clamp_limit
from trax.services.deps import ServiceDeps

E = TypeVar("E", bound=Entity)


async def keyset_page(
    deps: ServiceDeps,
    kind: type[E],
    account_id: str,
    *,
    limit: int | None,
    cursor: str | None,
    parent_id: str | None = None,
    after: str | None = None,
) -> Page[E]:
    """Fetch one page ordered by id; ask for one extra row to know if more follow.

    ``after`` (an id) is the plain alternative to a cursor, used by chat polling.
    """
    n = clamp_limit(limit)
    scope = f"{kind.KIND}:{parent_id or ''}"
    start = deps.cursors.decode(scope, cursor) or after
    rows = await deps.storage.list(kind, account_id, parent_id=parent_id, after=start, limit=n + 1)
    if len(rows) > n:
        rows = rows[:n]
        return Page(data=rows, next_cursor=deps.cursors.encode(scope, rows[-1].id))
    return Page(data=rows)
