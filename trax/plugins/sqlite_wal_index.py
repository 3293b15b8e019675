"""A change token for a WAL-mode SQLite file, read from its shared-memory WAL index.

Every commit to a WAL-mode database — from any connection in any process —
publishes itself by rewriting the WAL-index header at the start of the
``<db>-shm`` file: two copies of a 48-byte header whose ``iChange`` field is
incremented on every transaction (https://www.sqlite.org/walformat.html,
"The WAL-Index Header"). Readers of every SQLite version since 3.7.0 decide
what they may see from that header alone, so its layout is fixed by SQLite's
own promise that old and new libraries share one database concurrently.

Reading those 96 bytes with one ``pread`` is a much cheaper change check than
``PRAGMA data_version``, which opens a read transaction of its own (two
``fcntl`` lock calls and a statement step: about a fifth of a cached request's
cost). The token is the raw bytes of both copies, so *any* change to the
header — a commit, a WAL restart after a checkpoint, a writer caught half-way
through rewriting it — yields a token that differs from every earlier one;
equal tokens mean no commit landed in between. ``pread`` rather than ``mmap``:
a file truncated under a mapping would kill the process with ``SIGBUS``, a
short read only makes :meth:`WalIndex.token` return ``None``.

No library exposes this (the ``sqlite3`` module has no data-version or
file-control call), hence this small module; callers fall back to
``PRAGMA data_version`` whenever :meth:`WalIndex.token` returns ``None``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

HEADER_BYTES = 48
"""One copy of the WAL-index header; the file starts with two."""
WAL_INDEX_VERSION = 3007000
"""``iVersion`` of every WAL index SQLite has written since 3.7.0."""
_FIRST_WORDS = struct.Struct("=II")  # iVersion, unused (native byte order: the file is never portable)
_IS_INIT = 12  # offset of the isInit byte


class WalIndex:
    """The ``-shm`` file of one open database, read-only; see the module docstring."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def open(cls, database: Path) -> WalIndex | None:
        """The WAL index beside ``database``, or ``None`` when there is none to read.

        Call it only while a connection of this process has the database open
        in WAL mode: that connection keeps the index alive and initialised.
        """
        if not hasattr(os, "pread"):
            return None  # Windows: no positioned read; the caller keeps the pragma
        try:
            fd = os.open(f"{database}-shm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        index = cls(fd)
        if index.token() is None:
            index.close()
            return None
        return index

    def token(self) -> bytes | None:
        """Bytes that change whenever any connection commits, or ``None`` when unreadable now."""
        fd = self._fd
        if fd is None:
            return None
        try:
            raw = os.pread(fd, 2 * HEADER_BYTES, 0)
        except OSError:
            return None
        if len(raw) != 2 * HEADER_BYTES or not raw[_IS_INIT]:
            return None
        if _FIRST_WORDS.unpack_from(raw)[0] != WAL_INDEX_VERSION:
            return None  # not a layout this module knows: let the caller ask SQLite itself
        return raw

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __repr__(self) -> str:
        return f"WalIndex(open={self._fd is not None})"
