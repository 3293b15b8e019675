"""Sync-and-async calls over a private event-loop thread (used by ``Client`` and ``trax.connect``).

Jupyter already runs an event loop, so ``asyncio.run`` cannot be used from a cell,
and blocking that loop on itself would deadlock. Instead the async work runs on a
dedicated loop in a daemon thread that this object owns; the caller's thread
only waits on a ``concurrent.futures.Future``. Each method returns a
:class:`Call`:

* ``await call`` waits without blocking the caller's event loop;
* in plain code the call has already finished when it returns (its error is
  raised right there) and the :class:`Call` stands in for its result:
  attributes, ``repr``, HTML display, iteration and comparison go to the
  result; ``call.result()`` gives the bare object.

"Plain code" is a thread with no running event loop, or an IPython/Jupyter cell
(where waiting is what a person expects). Inside other async code a call does
not wait, so it must be awaited; ``wait=True/False`` overrides the choice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterator
from typing import Any, Generic, TypeVar

from trax import display

T = TypeVar("T")
log = logging.getLogger(__name__)


class LoopThread:
    """One event loop running forever on one daemon thread, until :meth:`close`."""

    def __init__(self, name: str = "trax-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.closed = False
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    @property
    def on_loop(self) -> bool:
        return threading.current_thread() is self.thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self.closed:
            coro.close()
            raise RuntimeError("This client is closed.")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it (never from the loop's own thread)."""
        if self.on_loop:
            coro.close()
            raise RuntimeError("Blocking on the client's own event loop would deadlock; await instead.")
        return self.submit(coro).result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self.closed:
            return
        self.closed = True
        if self.loop.is_running() or self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.on_loop:
            self.thread.join(timeout)


def _in_ipython() -> bool:
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    try:
        return get is not None and get() is not None
    except Exception:
        return False


def caller_is_async() -> bool:
    """True inside async code that expects to ``await`` (an event loop runs here, and it isn't IPython's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return not _in_ipython()


class Call(Generic[T]):
    """An operation started on the loop thread: awaitable, and a stand-in for its result."""

    __slots__ = ("_future", "_observed", "_thread")

    def __init__(self, future: concurrent.futures.Future[T], thread: LoopThread) -> None:
        self._future = future
        self._thread = thread
        self._observed = False

    def result(self, timeout: float | None = None) -> T:
        """The result (or its exception), waiting up to ``timeout`` seconds."""
        if self._thread.on_loop and not self._future.done():
            raise RuntimeError("A pending Call cannot be waited for on its own event loop; await it.")
        self._observed = True
        return self._future.result(timeout)

    def __del__(self) -> None:
        # like asyncio's "exception was never retrieved": an un-awaited failure must not vanish silently
        try:
            if not self._observed and self._future.done() and self._future.exception() is not None:
                log.warning("a trax call failed and its result was never used: %r", self._future.exception())
        except Exception:
            pass

    def done(self) -> bool:
        return self._future.done()

    def __await__(self) -> Generator[Any, None, T]:
        self._observed = True
        return asyncio.wrap_future(self._future).__await__()

    # --- standing in for the result ------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.result(), name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.result())) | {"result", "done"}) if self.done() else ["done", "result"]

    def __iter__(self) -> Iterator[Any]:
        value: Any = self.result()
        return iter(value)

    def __len__(self) -> int:
        value: Any = self.result()
        return len(value)

    def __getitem__(self, key: Any) -> Any:
        value: Any = self.result()
        return value[key]

    def __contains__(self, item: Any) -> bool:
        value: Any = self.result()
        return item in value

    def __bool__(self) -> bool:
        return bool(self.result())

    def __eq__(self, other: object) -> bool:
        other = other.result() if isinstance(other, Call) else other
        return bool(self.result() == other)

    def __hash__(self) -> int:
        # by identity, so a Call can go into asyncio.gather() and sets like any awaitable
        return id(self)

    def _settled(self) -> tuple[bool, Any]:
        """(ok, value-or-error) without waiting; reprs must not block on a pending call."""
        if not self._future.done():
            return False, None
        self._observed = True  # shown to someone: the outcome was not lost
        exc = self._future.exception()
        return (exc is None), (self._future.result() if exc is None else exc)

    def __repr__(self) -> str:
        def render() -> str:
            if not self._future.done():
                return "<Call pending: await it or call .result()>"
            ok, value = self._settled()
            return repr(value) if ok else f"<Call failed: {value!r}>"

        return display.safe(render, "<Call>")

    def __str__(self) -> str:
        ok, value = self._settled()
        return str(value) if ok else repr(self)

    def _repr_html_(self) -> str | None:
        ok, value = self._settled()
        method = getattr(value, "_repr_html_", None) if ok else None
        return display.safe(method, "") or None if method else None


class BlockingExecutor:
    """Runs each operation on a :class:`LoopThread` and returns a :class:`Call` (see the module doc)."""

    def __init__(self, thread: LoopThread, wait: bool | None = None) -> None:
        self.thread = thread
        self.wait = wait

    def should_wait(self) -> bool:
        if self.thread.on_loop:
            return False
        return self.wait if self.wait is not None else not caller_is_async()

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Call[T]:
        async def go() -> T:
            return await fn(*args)

        call = Call(self.thread.submit(go()), self.thread)
        if self.should_wait():
            call.result()  # raise the error here, at the line that made the call
        return call

    def pages(self, fetch: Callable[[str | None], Awaitable[tuple[list[Any], str | None]]], title: str) -> Pager:
        return Pager(fetch, title, self.thread)


class Pager:
    """Every item of a list, following ``nextCursor`` page by page as iteration reaches it.

    ``for`` / ``async for`` it, ``await`` it or call :meth:`to_list`; in a notebook it
    shows its first rows.
    """

    def __init__(
        self, fetch: Callable[[str | None], Awaitable[tuple[list[Any], str | None]]], title: str, thread: LoopThread
    ) -> None:
        self._fetch = fetch
        self._thread = thread
        self.title = title

    async def _page(self, cursor: str | None) -> tuple[list[Any], str | None]:
        return await self._fetch(cursor)

    def __iter__(self) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            items, cursor = self._thread.run(self._page(cursor))
            yield from items
            if not cursor:
                return

    async def __aiter__(self) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            items, cursor = await asyncio.wrap_future(self._thread.submit(self._page(cursor)))
            for item in items:
                yield item
            if not cursor:
                return

    def to_list(self, limit: int | None = None) -> list[Any]:
        out: list[Any] = []
        if limit is not None and limit <= 0:
            return out
        for item in self:
            out.append(item)
            if limit is not None and len(out) >= limit:
                break  # stop before the next page is fetched
        return out

    def first(self, n: int = 1) -> list[Any]:
        return self.to_list(limit=n)

    def __await__(self) -> Generator[Any, None, list[Any]]:
        async def collect() -> list[Any]:
            return [item async for item in self]

        return collect().__await__()

    def _preview(self) -> tuple[str, str]:
        from trax.client.api import page_html

        items = self.to_list(limit=display.MAX_ROWS + 1)
        return page_html(self.title, items[: display.MAX_ROWS], len(items) > display.MAX_ROWS)

    def _repr_html_(self) -> str:
        if self._thread.on_loop:
            return display.html_rows(self.title, ["id"], [])
        return display.safe(lambda: self._preview()[0], f"&lt;{self.title}&gt;")

    def __repr__(self) -> str:
        if self._thread.on_loop:
            return f"<Pager {self.title}>"
        return display.safe(lambda: self._preview()[1], f"<Pager {self.title}>")
