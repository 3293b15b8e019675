"""``Client``: the remote ``/v1`` SDK for plain code and notebooks.

It runs an :class:`~trax.client.aio.AsyncClient`'s machinery on a private
event-loop thread (:mod:`trax.client.bridge`), so it works in scripts, in
threads and inside Jupyter's running loop alike; in async code its calls can be
awaited too.
"""

from __future__ import annotations

import weakref
from typing import Any

import httpx

from trax import display
from trax.client.api import Api, Root
from trax.client.bridge import BlockingExecutor, LoopThread
from trax.client.http import HttpTransport


class Client(Root):
    """``c = Client(url, key); studio = c.studios.create(name="Main"); studio.go_live()``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        wait: bool | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key_hint = display.mask(api_key, keep=12)
        self._thread = LoopThread("trax-client")
        self.transport = HttpTransport(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            transport=transport,
        )
        self._attach(Api(self.transport, BlockingExecutor(self._thread, wait)))
        self._finalizer = weakref.finalize(self, _close, self._thread, self.transport)

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, key={self._key_hint!r})"

    def close(self) -> None:
        """Close connections and stop the client's loop thread."""
        self._finalizer()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _close(thread: LoopThread, transport: HttpTransport) -> None:
    if thread.closed:
        return
    try:
        if not thread.on_loop:
            thread.run(transport.aclose(), timeout=10)
    except Exception:
        pass
    finally:
        thread.close()
