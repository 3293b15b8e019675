"""``filesystem`` and ``memory`` blob stores for uploaded media."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from trax.domain.errors import InvalidRequest, NotFound, PayloadTooLarge
from trax.interfaces import BlobStore, StoredBlob
from trax.plugin_api import Backend, NoOptions, hookimpl

log = logging.getLogger(__name__)

_KEY = re.compile(r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$")
# the partial file of a put: ``.<last key segment>.<12 hex>.part`` (a key segment never starts with a dot)
_PART = re.compile(r"^\.[A-Za-z0-9_]+\.[0-9a-f]{12}\.part$")


def _check_key(key: str) -> str:
    if not _KEY.match(key) or len(key) > 255:
        raise InvalidRequest("Invalid blob key.")
    return key


class FilesystemOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root: Path = Path("var/blobs")


class FilesystemBlobStore:
    """Writes to ``<key>.part`` then renames, so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self._root = root
        # partial files of puts running in this process: never swept, however long a slow client idles
        self._writing: set[Path] = set()

    async def open(self) -> None:
        await asyncio.to_thread(self._root.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        return self._root / _check_key(key)

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StoredBlob:
        path = self._path(key)
        # a name of its own per upload, so two concurrent puts of one key never interleave bytes
        part = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        self._writing.add(part)
        try:
            return await self._write(key, path, part, chunks, max_bytes)
        finally:
            self._writing.discard(part)

    async def _write(
        self, key: str, path: Path, part: Path, chunks: AsyncIterator[bytes], max_bytes: int
    ) -> StoredBlob:
        digest = hashlib.sha256()
        size = 0
        fh = await asyncio.to_thread(open, part, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"The upload is larger than its announced {max_bytes} bytes.")
                digest.update(chunk)
                await asyncio.to_thread(fh.write, chunk)
            await asyncio.to_thread(fh.flush)
            await asyncio.to_thread(os.fsync, fh.fileno())
        except BaseException:
            fh.close()
            await asyncio.to_thread(part.unlink, missing_ok=True)
            raise
        fh.close()
        await asyncio.to_thread(os.replace, part, path)
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest())

    async def open_read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            fh = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise NotFound("No such blob.") from None
        try:
            while chunk := await asyncio.to_thread(fh.read, 256 * 1024):
                yield chunk
        finally:
            fh.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).exists)

    async def sweep_partials(self, *, older_than_seconds: float) -> int:
        """Remove ``.part`` files nobody has written to for ``older_than_seconds`` (left by a killed process).

        A put running here is skipped by name; one running in another process sharing the folder keeps
        its file's modification time fresh with every chunk it writes.
        """
        busy = frozenset(self._writing)  # a put starting after this snapshot makes a brand-new file
        return await asyncio.to_thread(self._sweep, busy, time.time() - older_than_seconds)

    def _sweep(self, busy: frozenset[Path], cutoff: float) -> int:
        removed = 0
        for folder, _dirs, files in os.walk(self._root):  # does not follow symlinks
            for name in files:
                path = Path(folder) / name
                if not _PART.match(name) or path in busy:
                    continue
                try:
                    if path.lstat().st_mtime >= cutoff:
                        continue
                    path.unlink()
                except FileNotFoundError:  # finished or swept by another process meanwhile
                    continue
                log.info("removed a partial blob left by an interrupted write: %s", path.relative_to(self._root))
                removed += 1
        return removed


class MemoryBlobStore:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int) -> StoredBlob:
        buf = bytearray()
        async for chunk in chunks:
            buf += chunk
            if len(buf) > max_bytes:
                raise PayloadTooLarge(f"The upload is larger than its announced {max_bytes} bytes.")
        self._blobs[_check_key(key)] = bytes(buf)
        return StoredBlob(key=key, size=len(buf), sha256=hashlib.sha256(buf).hexdigest())

    async def open_read(self, key: str) -> AsyncIterator[bytes]:
        if key not in self._blobs:
            raise NotFound("No such blob.")
        yield self._blobs[key]

    async def delete(self, key: str) -> None:
        self._blobs.pop(key, None)

    async def exists(self, key: str) -> bool:
        return key in self._blobs


def _fs(options: Any, runtime: Any) -> BlobStore:
    return FilesystemBlobStore(options.root)


def _mem(options: Any, runtime: Any) -> BlobStore:
    return MemoryBlobStore()


@hookimpl
def trax_register_blob_stores() -> list[Backend[BlobStore]]:
    return [
        Backend("filesystem", _fs, FilesystemOptions, description="Files under a local folder."),
        Backend("memory", _mem, NoOptions, description="In-process bytes; for tests."),
    ]
