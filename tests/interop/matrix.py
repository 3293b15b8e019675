"""The cells of the interop matrix and their results, for the table the matrix prints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    client: str
    protocol: str
    direction: str  # "publish" (into trax) or "read" (out of trax); "read" variants carry a note

    def __str__(self) -> str:
        return f"{self.client}-{self.protocol}-{self.direction}".replace(" ", "_")


RESULTS: dict[Cell, str] = {}
"""Filled by conftest's report hook, in the order the cells ran."""


def table() -> str:
    """A Markdown table (docs/interop.md keeps the measured one)."""
    rows = [("Client", "Protocol", "Direction", "Result"), ("---", "---", "---", "---")]
    rows += [(c.client, c.protocol, c.direction, r) for c, r in RESULTS.items()]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
