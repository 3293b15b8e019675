"""The plugin module trax loads through the ``trax`` entry point: one hook implementation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from trax import Backend, hookimpl
from trax.interfaces import Storage
from trax_plugin_template.storage import SnapshotStorage


class SnapshotOptions(BaseModel):
    """``storage.options`` for ``backend: snapshot``; trax validates them before the factory runs."""

    model_config = ConfigDict(extra="forbid")  # a typo is a start-up error, not a silent default
    path: Path = Path("var/trax-snapshot.json")
    indent: int | None = None
    """Pretty-print the JSON file (handy when reading it by eye)."""


def _factory(options: SnapshotOptions, runtime: Any) -> Storage:
    return SnapshotStorage(options.path, indent=options.indent)


@hookimpl
def trax_register_storage() -> list[Backend[Storage]]:
    return [
        Backend(
            "snapshot",
            _factory,
            SnapshotOptions,
            description="In memory, saved to one JSON file after each write (single process).",
        )
    ]
