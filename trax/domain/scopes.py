"""The fixed scope vocabulary of /v1 (docs/api.md, "Scopes"). A ``*:write`` scope never implies ``*:read``."""

from __future__ import annotations

from collections.abc import Iterable

SCOPES: tuple[str, ...] = (
    "studios:read",
    "studios:write",
    "sources:read",
    "sources:write",
    "destinations:read",
    "destinations:write",
    "stream:read",
    "stream:write",
    "connections:read",
    "connections:write",
    "chat:read",
    "chat:write",
    "media:read",
    "media:write",
    "webhooks:manage",
    "keys:manage",
)
ALL_SCOPES: frozenset[str] = frozenset(SCOPES)


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    return [s for s in scopes if s not in ALL_SCOPES]


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Deduplicate and order by the vocabulary so stored scope lists compare equal."""
    wanted = set(scopes)
    return tuple(s for s in SCOPES if s in wanted)
