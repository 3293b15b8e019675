"""``memory`` storage: everything in dicts; for tests, notebooks and throwaway servers."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
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

_NO_PARENT = "The object this one belongs to does not exist."
_ORPHANS = "Objects were added under one being deleted meanwhile; retry."


class MemoryStorage:
    """Ids are kept sorted per (kind, account) so ``list`` is a bisect and a slice.

    ``apply`` never awaits, so one batch runs whole between two steps of any
    other task: the parent/child rule is checked and the batch committed with no
    other writer in between.
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, str], Entity] = {}
        self._ids: dict[_Key, list[str]] = {}
        self._unique: dict[tuple[str, str], tuple[str, str, str]] = {}
        # (account, parent id) -> rows naming it as parent: the delete check without a scan
        self._children: dict[tuple[str, str], set[tuple[str, str, str]]] = {}

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
        self._check_parents(rows, current)
        for key, row in rows.items():
            ids = self._ids.setdefault((key[0], key[1]), [])
            old = self._rows.get(key)
            if old is not None and old.parent_id is not None:
                siblings = self._children.get((key[1], old.parent_id))
                if siblings is not None:
                    siblings.discard(key)
                    if not siblings:
                        del self._children[(key[1], old.parent_id)]
            if row is None:
                if self._rows.pop(key, None) is not None:
                    ids.pop(bisect.bisect_left(ids, key[2]))
            else:
                if old is None:
                    bisect.insort(ids, key[2])
                self._rows[key] = row
                if row.parent_id is not None:
                    self._children.setdefault((key[1], row.parent_id), set()).add(key)
        for u, ref in uniques.items():
            if ref is None:
                self._unique.pop(u, None)
            else:
                self._unique[u] = ref

    def _check_parents(
        self,
        rows: Mapping[tuple[str, str, str], Entity | None],
        current: Callable[[tuple[str, str, str]], Entity | None],
    ) -> None:
        """The batch's end state keeps every parent of a written row and leaves no child orphaned."""
        kinds = {k for k, _ in self._ids} | {key[0] for key in rows}

        def exists(account_id: str, id: str) -> bool:
            return any(current((kind, account_id, id)) is not None for kind in kinds)

        written: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for key, row in rows.items():
            if row is not None and row.parent_id is not None:
                written.setdefault((key[1], row.parent_id), []).append(key)
        for account_id, parent_id in written:
            if not exists(account_id, parent_id):
                raise NotFound(_NO_PARENT)
        for key, row in rows.items():
            if row is not None:
                continue
            ref = (key[1], key[2])
            for child in (*self._children.get(ref, ()), *written.get(ref, ())):
                ent = current(child)
                if ent is not None and ent.parent_id == key[2] and not exists(*ref):
                    raise Conflict(_ORPHANS)

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
