"""The ``/v1`` object model, written once over two small seams.

* a :class:`Transport` moves one request (HTTP for the remote clients, direct
  service calls for the in-process platform);
* an :class:`Executor` decides what a method returns: the async executor hands
  back the coroutine itself, the blocking one (``trax.client.bridge``) runs it on
  a private event-loop thread and returns a :class:`~trax.client.bridge.Call`.

So ``studio.sources.create(kind="rtmp")`` is the same code for
:class:`~trax.client.aio.AsyncClient`, :class:`~trax.client.sync.Client` and
``trax.connect``.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from trax.client import models
from trax.client.models import Model
from trax.client.progress import default_progress

T = TypeVar("T")
M = TypeVar("M", bound=Model)

PageFetch = Callable[[str | None], Awaitable[tuple[list[Any], str | None]]]
UPLOAD_CHUNK = 1024 * 1024


class Transport(Protocol):
    """Moves one ``/v1`` exchange; raises a :class:`trax.TraxError` subclass for an error answer."""

    async def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """The decoded JSON answer (``None`` for 204)."""

    async def send_upload(self, upload: models.Upload, chunks: AsyncIterator[bytes], size: int) -> Any:
        """Send an asset's bytes to ``upload.url``; the decoded MediaAsset answer."""

    async def aclose(self) -> None: ...


class Executor(Protocol):
    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Any:
        """Start ``fn(*args)``; what comes back is the executor's business."""

    def pages(self, fetch: PageFetch, title: str) -> Any:
        """An iterable over every item of a paginated list."""


class AsyncExecutor:
    """For :class:`AsyncClient`: methods return coroutines, lists are :class:`AsyncPager`."""

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Awaitable[T]:
        return fn(*args)

    def pages(self, fetch: PageFetch, title: str) -> AsyncPager:
        return AsyncPager(fetch, title)


class AsyncPager:
    """Every item of a list, following ``nextCursor``: ``async for`` it, or ``await`` it for a list."""

    def __init__(self, fetch: PageFetch, title: str) -> None:
        self._fetch = fetch
        self.title = title

    async def __aiter__(self) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            items, cursor = await self._fetch(cursor)
            for item in items:
                yield item
            if not cursor:
                return

    async def to_list(self, limit: int | None = None) -> list[Any]:
        out: list[Any] = []
        if limit is not None and limit <= 0:
            return out
        async for item in self:
            out.append(item)
            if limit is not None and len(out) >= limit:
                break  # stop before the next page is fetched
        return out

    def __await__(self) -> Generator[Any, None, list[Any]]:
        return self.to_list().__await__()

    def __repr__(self) -> str:
        return f"<AsyncPager {self.title}: use 'async for' or 'await'>"


class Api:
    """One client's view of ``/v1``: a transport, an executor, and the resource collections."""

    def __init__(self, transport: Transport, executor: Executor) -> None:
        self.transport = transport
        self.executor = executor

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        into: type[Model] | None = None,
    ) -> Any:
        return self.executor.run(self.acall, method, path, params, json, into)

    async def acall(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        into: type[M] | None = None,
    ) -> Any:
        data = await self.transport.request(method, path, params=params, json=json)
        return self.wrap(data, into) if into is not None else data

    def wrap(self, data: Any, into: type[M]) -> M:
        return into.from_wire(data, self)

    def paginate(
        self, path: str, into: type[Model], *, limit: int | None = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Every item of the list at ``path``, pages of ``limit`` fetched as iteration reaches them."""

        async def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
            query = {k: v for k, v in (params or {}).items() if v is not None}
            if limit is not None:
                query["limit"] = limit
            if cursor:
                query["cursor"] = cursor
            page = await self.transport.request("GET", path, params=query)
            if not isinstance(page, Mapping) or not isinstance(page.get("data"), list):
                raise TypeError(f"GET {path}: expected a page with 'data'")
            nxt = page.get("nextCursor")
            return [self.wrap(i, into) for i in page["data"]], nxt if isinstance(nxt, str) and nxt else None

        return self.executor.pages(fetch, f"{into.__name__} list")

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Any:
        return self.executor.run(fn, *args)


# --- collections ---------------------------------------------------------------


class Collection:
    def __init__(self, api: Api) -> None:
        self._api = api

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _body(**values: Any) -> dict[str, Any]:
    return models.to_wire({k: v for k, v in values.items() if v is not None})


class Studios(Collection):
    """``/v1/studios``."""

    def create(self, name: str, *, description: str | None = None) -> Any:
        return self._api.call("POST", "/v1/studios", json=_body(name=name, description=description), into=models.Studio)

    def list(self, *, limit: int | None = None) -> Any:
        """Every studio, oldest first (pages of ``limit`` are fetched as you iterate)."""
        return self._api.paginate("/v1/studios", models.Studio, limit=limit)

    def get(self, studio_id: str) -> Any:
        return self._api.call("GET", f"/v1/studios/{studio_id}", into=models.Studio)

    def update(self, studio_id: str, **changes: Any) -> Any:
        return self._api.call("PATCH", f"/v1/studios/{studio_id}", json=models.to_wire(changes), into=models.Studio)

    def delete(self, studio_id: str) -> Any:
        return self._api.call("DELETE", f"/v1/studios/{studio_id}")


class Sources(Collection):
    """``/v1/studios/{studioId}/sources``."""

    def __init__(self, api: Api, studio_id: str) -> None:
        super().__init__(api)
        self.studio_id = studio_id
        self._base = f"/v1/studios/{studio_id}/sources"

    def create(self, kind: str, *, name: str | None = None, media_asset_id: str | None = None) -> Any:
        body = _body(name=name or f"{kind} source", kind=kind, media_asset_id=media_asset_id)
        return self._api.call("POST", self._base, json=body, into=models.Source)

    def list(self, *, limit: int | None = None) -> Any:
        return self._api.paginate(self._base, models.Source, limit=limit)

    def get(self, source_id: str) -> Any:
        return self._api.call("GET", f"{self._base}/{source_id}", into=models.Source)

    def delete(self, source_id: str) -> Any:
        return self._api.call("DELETE", f"{self._base}/{source_id}")


class Destinations(Collection):
    """``/v1/studios/{studioId}/destinations``. ``stream_key``, ``streamid`` and ``passphrase`` are write-only."""

    def __init__(self, api: Api, studio_id: str) -> None:
        super().__init__(api)
        self._base = f"/v1/studios/{studio_id}/destinations"

    def create(
        self,
        name: str,
        platform: str,
        *,
        connection_id: str | None = None,
        enabled: bool | None = None,
        rtmp_url: str | None = None,
        stream_key: str | None = None,
        srt_url: str | None = None,
        streamid: str | None = None,
        passphrase: str | None = None,
    ) -> Any:
        body = _body(
            name=name,
            platform=platform,
            connection_id=connection_id,
            enabled=enabled,
            rtmp_url=rtmp_url,
            stream_key=stream_key,
            srt_url=srt_url,
            streamid=streamid,
            passphrase=passphrase,
        )
        return self._api.call("POST", self._base, json=body, into=models.Destination)

    def list(self, *, limit: int | None = None) -> Any:
        return self._api.paginate(self._base, models.Destination, limit=limit)

    def get(self, destination_id: str) -> Any:
        return self._api.call("GET", f"{self._base}/{destination_id}", into=models.Destination)

    def delete(self, destination_id: str) -> Any:
        return self._api.call("DELETE", f"{self._base}/{destination_id}")


class Chat(Collection):
    """``/v1/studios/{studioId}/chat/messages``."""

    def __init__(self, api: Api, studio_id: str) -> None:
        super().__init__(api)
        self._base = f"/v1/studios/{studio_id}/chat/messages"

    def send(self, text: str) -> Any:
        return self._api.call("POST", self._base, json={"text": text}, into=models.ChatMessage)

    def list(self, *, after: str | None = None, limit: int | None = None) -> Any:
        """Messages in order; ``after`` a message id returns only newer ones (polling)."""
        return self._api.paginate(self._base, models.ChatMessage, limit=limit, params={"after": after})


class Connections(Collection):
    """``/v1/connections`` (linking happens through platform plugins)."""

    def list(self, *, limit: int | None = None) -> Any:
        return self._api.paginate("/v1/connections", models.Connection, limit=limit)

    def get(self, connection_id: str) -> Any:
        return self._api.call("GET", f"/v1/connections/{connection_id}", into=models.Connection)

    def unlink(self, connection_id: str) -> Any:
        return self._api.call("DELETE", f"/v1/connections/{connection_id}")


class Keys(Collection):
    """``/v1/keys``. A created or rotated key carries ``secret`` once."""

    def create(
        self,
        name: str,
        scopes: Iterable[str],
        *,
        expires_at: Any = None,
        rate_limit: Mapping[str, Any] | None = None,
    ) -> Any:
        body = _body(name=name, scopes=list(scopes), expires_at=expires_at)
        if rate_limit is not None:
            body["rateLimit"] = models.to_wire(rate_limit)
        return self._api.call("POST", "/v1/keys", json=body, into=models.ApiKey)

    def list(self, *, limit: int | None = None) -> Any:
        return self._api.paginate("/v1/keys", models.ApiKey, limit=limit)

    def revoke(self, key_id: str) -> Any:
        return self._api.call("DELETE", f"/v1/keys/{key_id}")

    def rotate(self, key_id: str, *, grace_period_seconds: int | None = None) -> Any:
        body = _body(grace_period_seconds=grace_period_seconds)
        return self._api.call("POST", f"/v1/keys/{key_id}/rotate", json=body, into=models.ApiKey)


# --- media -------------------------------------------------------------------------

ProgressFactory = Callable[[int, str], Any]  # default: trax.client.progress.default_progress
"""``factory(total_bytes, name)`` -> an object with ``update(n)`` and ``close()`` (a tqdm bar)."""


UploadSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]


def _describe(source: UploadSource) -> tuple[str | None, int, IO[bytes] | bytes]:
    """(file name, size, readable) without reading the whole file into memory."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return None, len(data), data
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return path.name, path.stat().st_size, path.open("rb")
    start = source.tell()
    size = source.seek(0, os.SEEK_END) - start
    source.seek(start)
    return getattr(source, "name", None), size, source


def _read_chunk(body: IO[bytes] | bytes, offset: int) -> bytes:
    if isinstance(body, bytes):
        return body[offset : offset + UPLOAD_CHUNK]
    return body.read(UPLOAD_CHUNK)


async def _sha256(body: IO[bytes] | bytes) -> str:
    if isinstance(body, bytes):
        return hashlib.sha256(body).hexdigest()

    def digest() -> str:
        start = body.tell()
        h = hashlib.sha256()
        for block in iter(lambda: body.read(UPLOAD_CHUNK), b""):
            h.update(block)
        body.seek(start)
        return h.hexdigest()

    return await asyncio.to_thread(digest)


class Media(Collection):
    """``/v1/media``: assets and their uploads."""

    def list(self, *, limit: int | None = None) -> Any:
        return self._api.paginate("/v1/media", models.MediaAsset, limit=limit)

    def get(self, asset_id: str) -> Any:
        return self._api.call("GET", f"/v1/media/{asset_id}", into=models.MediaAsset)

    def delete(self, asset_id: str) -> Any:
        return self._api.call("DELETE", f"/v1/media/{asset_id}")

    def create_upload(self, name: str, content_type: str, size_bytes: int, *, sha256: str | None = None) -> Any:
        """Step one of an upload, for callers that send the bytes themselves."""
        body = _body(name=name, content_type=content_type, size_bytes=size_bytes, sha256=sha256)
        return self._api.call("POST", "/v1/media/uploads", json=body, into=models.Upload)

    def upload(
        self,
        source: UploadSource,
        *,
        name: str | None = None,
        content_type: str | None = None,
        progress: bool | ProgressFactory = True,
    ) -> Any:
        """Upload a file (path, bytes or binary file object); returns the stored :class:`MediaAsset`.

        The sha256 is computed first so the server can check the bytes; a progress
        bar (tqdm) follows the upload unless ``progress=False``.
        """
        return self._api.run(self._upload, source, name, content_type, progress)

    async def _upload(
        self,
        source: UploadSource,
        name: str | None,
        content_type: str | None,
        progress: bool | ProgressFactory,
    ) -> models.MediaAsset:
        file_name, size, body = _describe(source)
        try:
            name = name or file_name or "upload.bin"
            content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
            digest = await _sha256(body)
            created = await self._api.transport.request(
                "POST",
                "/v1/media/uploads",
                json=_body(name=name, content_type=content_type, size_bytes=size, sha256=digest),
            )
            upload = models.Upload.from_wire(created, self._api)
            factory = default_progress if progress is True else progress or None
            bar = factory(size, name) if factory else None

            async def chunks() -> AsyncIterator[bytes]:
                offset = 0
                while offset < size:
                    block = (
                        _read_chunk(body, offset)
                        if isinstance(body, bytes)
                        else await asyncio.to_thread(_read_chunk, body, offset)
                    )
                    if not block:
                        return
                    offset += len(block)
                    if bar is not None:
                        bar.update(len(block))
                    yield block

            try:
                answer = await self._api.transport.send_upload(upload, chunks(), size)
            finally:
                if bar is not None:
                    bar.close()
            return self._api.wrap(answer, models.MediaAsset)
        finally:
            if not isinstance(body, bytes) and isinstance(source, (str, os.PathLike)):
                body.close()


def page_html(title: str, items: list[Any], truncated: bool) -> tuple[str, str]:
    """(HTML, text) for the first items of a list; ``truncated`` adds a "more" footer."""
    shown = [i for i in items if isinstance(i, Model)]
    more = f"first {len(shown)} shown; iterate for all" if truncated else f"{len(shown)} item(s)"
    return models.render_many(title, shown, more)


class Root:
    """What every entry point offers: the top-level ``/v1`` collections."""

    api: Api
    studios: Studios
    keys: Keys
    connections: Connections
    media: Media

    def _attach(self, api: Api) -> None:
        self.api = api
        self.studios = Studios(api)
        self.keys = Keys(api)
        self.connections = Connections(api)
        self.media = Media(api)

    def health(self) -> Any:
        return self.api.call("GET", "/v1/health", into=models.Health)
