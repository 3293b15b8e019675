"""``AsyncClient``: the remote ``/v1`` SDK for async code (every method is a coroutine)."""

from __future__ import annotations

from typing import Any

import httpx

from trax import display
from trax.client.api import Api, AsyncExecutor, Root
from trax.client.http import HttpTransport


class AsyncClient(Root):
    """``async with AsyncClient(url, key) as c: studio = await c.studios.create(name="Main")``.

    Lists are async iterators over every page (``async for s in c.studios.list()``)
    that can also be awaited for a list. Errors are :class:`trax.TraxError`
    subclasses carrying ``request_id``; see :class:`~trax.client.http.HttpTransport`
    for retries.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key_hint = display.mask(api_key, keep=12)
        self.transport = HttpTransport(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            transport=transport,
        )
        self._attach(Api(self.transport, AsyncExecutor()))

    def __repr__(self) -> str:
        return f"AsyncClient({self.base_url!r}, key={self._key_hint!r})"

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
