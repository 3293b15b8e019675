"""``SnapshotStorage``: trax's in-memory storage, written to one JSON file after each write.

For single-process deployments that want their data to outlive a restart without a
database. Every read is served from memory; each successful ``apply`` rewrites the
file atomically (temporary file + rename), so a crash leaves the previous snapshot.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from trax.codec import decode_entity, encode_entity
from trax.domain.base import Entity
from trax.interfaces import Insert, Write
from trax.plugins.memory_storage import MemoryStorage


def _entity_classes() -> dict[str, type[Entity]]:
    out: dict[str, type[Entity]] = {}
    todo = list(Entity.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.KIND:
            out[cls.KIND] = cls
    return out


class SnapshotStorage(MemoryStorage):
    def __init__(self, path: str | os.PathLike[str], *, indent: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.indent = indent

    def __repr__(self) -> str:
        return f"<SnapshotStorage {self.path}>"

    async def open(self) -> None:
        if not self.path.exists():
            return
        kinds = _entity_classes()
        rows = json.loads(self.path.read_text(encoding="utf-8"))["rows"]
        entities = [decode_entity(kinds[r["kind"]], json.dumps(r["data"])) for r in rows if r["kind"] in kinds]
        await super().apply([Insert(e) for e in entities])

    async def apply(self, writes: Sequence[Write]) -> None:
        await super().apply(writes)
        self._save()

    async def touch_keys(self, last_used: Mapping[str, datetime]) -> None:
        await super().touch_keys(last_used)
        self._save()

    async def close(self) -> None:
        self._save()

    def _save(self) -> None:
        rows: list[dict[str, Any]] = [
            {"kind": key[0], "data": json.loads(encode_entity(entity))} for key, entity in sorted(self._rows.items())
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "rows": rows}, f, indent=self.indent)
        os.replace(tmp, self.path)
