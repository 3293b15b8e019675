"""Checks shared by use cases, so a notebook caller gets the same errors as /v1."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trax.domain.errors import InvalidRequest


def text(value: Any, param: str, *, min_len: int = 1, max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{param} must be a string.", param=param)
    if not (min_len <= len(value) <= max_len):
        raise InvalidRequest(f"{param} must be {min_len}..{max_len} characters.", param=param)
    return value


def optional_text(value: Any, param: str, *, max_len: int) -> str | None:
    return None if value is None else text(value, param, min_len=0, max_len=max_len)


def only_fields(changes: Mapping[str, Any], allowed: Iterable[str]) -> None:
    extra = sorted(set(changes) - set(allowed))
    if extra:
        raise InvalidRequest(f"Unknown or read-only field: {extra[0]}.", param=extra[0])
