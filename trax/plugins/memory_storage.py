"""``memory`` storage: everything in dicts; for tests, notebooks and throwaway servers."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, cast

from trax.domain.base import Entity
from trax.domain.errors import Conflict, NotFound
from trax.domain.keys import ApiKey
from trax.interfaces import Delete, Insert, Storage, Write
from trax.plugin_api import Backend, hookimpl

E = TypeVar("E", bound=Entity)

_Key = tuple[str, str]  # (kind, account_id)


class MemoryStorage:
    """Ids are kept sorted per (kind, account) so ``list`` is a bisect and a slice."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, str], Entity] = {}
        self._ids: dict[_Key, list[str]] = {}
        self._unique: dict[tuple[str, str], tuple[str, str, str]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def get(self, kind: type[E], account_id: str, id: str) -> E | None:
        return cast("E | None", self._rows.get((kind.KIND, account_id, id)))

    async def list(
        self,
        kind: type[E],
        account_id: str,
        *,
        parent_id: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[E]:
        ids = self._ids.get((kind.KIND, account_id), [])
        i = bisect.bisect_right(ids, after) if after else 0
        out: list[E] = []
        while i < len(ids) and len(out) < limit:
            row = self._rows[(kind.KIND, account_id, ids[i])]
            if parent_id is None or row.parent_id == parent_id:
                out.append(cast(E, row))
            i += 1
        return out

    async def find_unique(self, kind: type[E], index: str, value: str) -> E | None:
        ref = self._unique.get((index, value))
        if ref is None or ref[0] != kind.KIND:
            return None
        return cast("E | None", self._rows.get(ref))

    async def apply(self, writes: Sequence[Write]) -> None:
        # Validate against a scratch view first so a failing batch changes nothing.
        rows: dict[tuple[str, str, str], Entity | None] = {}
        uniques: dict[tuple[str, str], tuple[str, str, str] | None] = {}

        def current(key: tuple[str, str, str]) -> Entity | None:
            return rows[key] if key in rows else self._rows.get(key)

        def owner(u: tuple[str, str]) -> tuple[str, str, str] | None:
            return uniques[u] if u in uniques else self._unique.get(u)

        for w in writes:
            if isinstance(w, Delete):
                key = (w.kind.KIND, w.account_id, w.id)
                old = current(key)
                if old is None:
                    raise NotFound("No such resource.")
                for u in old.unique_keys().items():
                    uniques[u] = None
                rows[key] = None
                continue
            ent = w.entity
            key = (ent.KIND, ent.account_id, ent.id)
            old = current(key)
            if isinstance(w, Insert):
                if old is not None:
                    raise Conflict("An object with this id already exists.")
            else:
                if old is None:
                    raise NotFound("No such resource.")
                if w.expect_updated_at is not None and old.updated_at != w.expect_updated_at:
                    raise Conflict("The object changed meanwhile; retry.")
                for u in old.unique_keys().items():
                    uniques[u] = None
            for u in ent.unique_keys().items():
                holder = owner(u)
                if holder is not None and holder != key:
                    raise Conflict(f"Duplicate value for {u[0]}.")
                uniques[u] = key
            rows[key] = ent
        for key, row in rows.items():
            ids = self._ids.setdefault((key[0], key[1]), [])
            if row is None:
                if self._rows.pop(key, None) is not None:
                    ids.pop(bisect.bisect_left(ids, key[2]))
            else:
                if key not in self._rows:
                    bisect.insort(ids, key[2])
                self._rows[key] = row
        for u, ref in uniques.items():
            if ref is None:
                self._unique.pop(u, None)
            else:
                self._unique[u] = ref

    async def touch_keys(self, last_used: Mapping[str, datetime]) -> None:
        for key_id, when in last_used.items():
            ref = self._unique.get(("api_key.id", key_id))  # keys are indexed by id: no scan of every row
            if ref is None:
                continue
            row = self._rows.get(ref)
            if isinstance(row, ApiKey):
                self._rows[ref] = replace(row, last_used_at=when)


def _factory(options: Any, runtime: Any) -> Storage:
    return MemoryStorage()


@hookimpl
def trax_register_storage() -> list[Backend[Storage]]:
    return [Backend("memory", _factory, description="In-process dicts; nothing survives a restart.")]
