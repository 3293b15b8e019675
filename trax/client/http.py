"""HTTP transport for the remote clients: httpx, typed errors, bounded retries.

Retries: an answer of ``429 rate_limited`` or ``503 unavailable`` is retried
after ``Retry-After`` seconds (an exponential back-off if the header is missing),
at most ``max_retries`` times, and never when the server asks for a longer wait
than ``max_retry_wait``: then the error is raised at once with ``retry_after``
set. Both answers come before the server acts (docs/api.md, "Order of checks"), so
retrying a POST cannot apply it twice. A broken connection is retried (with the
same back-off) only for reads, then raised as ``Unavailable``; a write may have
arrived before the connection broke. ``503 write_disabled`` is not retried: it
is a deployment setting, not a passing condition. Upload bodies are streamed and
cannot be replayed, so uploads are not retried.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from trax.client.errors import error_from_envelope
from trax.client.models import Upload
from trax.domain.errors import RateLimited, TraxError, Unavailable

RETRYABLE = (RateLimited, Unavailable)


def _user_agent() -> str:
    from trax import __version__

    return f"trax-python/{__version__}"


def _decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class HttpTransport:
    """One ``httpx.AsyncClient`` bound to a base URL and an API key."""

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
        self._api_key = api_key
        self.max_retries = max(0, max_retries)
        self.max_retry_wait = max_retry_wait
        self.retries = 0
        """How many retries this transport has made (for tests and diagnostics)."""
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": _user_agent(), "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"<HttpTransport {self.base_url}>"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    async def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        attempt = 0
        while True:
            headers = {**self._auth(), "X-Request-Id": f"sdk_{uuid.uuid4().hex}"}
            try:
                response = await self._client.request(
                    method, path, params=dict(params) if params else None, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                # only reads are replayed: a write may have reached the server before the connection broke
                if method.upper() in ("GET", "HEAD") and attempt < self.max_retries:
                    attempt += 1
                    self.retries += 1
                    await asyncio.sleep(min(2.0 ** (attempt - 1) * 0.5, 8.0))
                    continue
                raise Unavailable(f"{method} {path}: cannot reach {self.base_url} ({type(exc).__name__}).") from exc
            if response.status_code < 400:
                return _decode(response)
            err = error_from_envelope(response.status_code, _decode(response), response.headers)
            delay = self._retry_delay(err, attempt)
            if delay is None:
                raise err
            attempt += 1
            self.retries += 1
            await asyncio.sleep(delay)

    def _retry_delay(self, err: TraxError, attempt: int) -> float | None:
        if not isinstance(err, RETRYABLE) or attempt >= self.max_retries:
            return None
        delay = float(err.retry_after) if err.retry_after is not None else min(2.0**attempt * 0.5, 8.0)
        return delay if delay <= self.max_retry_wait else None

    def _same_origin(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base_url)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    async def send_upload(self, upload: Upload, chunks: AsyncIterator[bytes], size: int) -> Any:
        url = upload.url if "://" in upload.url else self.base_url + "/" + upload.url.lstrip("/")
        headers = {**upload.headers, "Content-Length": str(size)}
        headers.setdefault("Content-Type", "application/octet-stream")
        if self._same_origin(url):  # never hand the API key to another host
            headers.update(self._auth())
        response = await self._client.request(upload.method or "PUT", url, content=chunks, headers=headers)
        if response.status_code >= 400:
            raise error_from_envelope(response.status_code, _decode(response), response.headers)
        return _decode(response)

    async def aclose(self) -> None:
        await self._client.aclose()
