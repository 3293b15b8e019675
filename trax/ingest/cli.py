"""``trax tokens ...``: placeholder until media tokens land (see issue: ingest plane I)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def register(sub: Any, add: Callable[..., Any]) -> None:
    return None
