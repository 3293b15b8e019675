"""Checks shared by use cases, so a notebook caller gets the same errors as /v1."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trax.domain.errors import InvalidRequest
from trax.domain.text import check_name, check_prose


def _string(value: Any, param: str, min_len: int, max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{param} must be a string.", param=param)
    if not (min_len <= len(value) <= max_len):
        raise InvalidRequest(f"{param} must be {min_len}..{max_len} characters.", param=param)
    return value


def text(value: Any, param: str, *, min_len: int = 1, max_len: int) -> str:
    """A name or identifier-like string (URL, key, platform): no control or bidi control characters."""
    return check_name(_string(value, param, min_len, max_len), param)


def optional_text(value: Any, param: str, *, max_len: int) -> str | None:
    return None if value is None else text(value, param, min_len=0, max_len=max_len)


def prose(value: Any, param: str, *, min_len: int = 1, max_len: int) -> str:
    """Free text (a description, a chat message): newlines, tabs and right-to-left marks allowed."""
    return check_prose(_string(value, param, min_len, max_len), param)


def optional_prose(value: Any, param: str, *, max_len: int) -> str | None:
    return None if value is None else prose(value, param, min_len=0, max_len=max_len)


def only_fields(changes: Mapping[str, Any], allowed: Iterable[str]) -> None:
    extra = sorted(set(changes) - set(allowed))
    if extra:
        raise InvalidRequest(f"Unknown or read-only field: {extra[0]}.", param=extra[0])
