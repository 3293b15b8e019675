"""The bytes all of a listener's connections may hold in incomplete messages, together.

Each connection has its own limits (``ChunkLimits``); this one bounds their sum, so that many
connections each under its own limit cannot add up to the process's memory. A connection whose
next read would pass it is dropped (``ChunkReader`` asks before it keeps the bytes).
"""

from __future__ import annotations


class ByteBudget:
    """A counter with a ceiling; single-threaded (the event loop)."""

    __slots__ = ("in_use", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def __repr__(self) -> str:
        return f"<ByteBudget {self.in_use}/{self.limit}>"

    def take(self, n: int) -> bool:
        if self.in_use + n > self.limit:
            return False
        self.in_use += n
        return True

    def give(self, n: int) -> None:
        self.in_use = max(0, self.in_use - n)
