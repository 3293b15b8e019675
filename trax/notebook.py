"""``trax.connect``: a whole deployment in this process, scripted like the ``/v1`` SDK.

    p = trax.connect("configs/dev.yaml", account="acme")
    studio = p.studios.create(name="Main")          # plainly, in a script or a notebook cell
    src = studio.sources.create(kind="rtmp")
    status = await studio.go_live()                  # or awaited, in async code

The runtime lives on a private event-loop thread (:mod:`trax.client.bridge`), so
this works inside Jupyter's running loop without ``nest_asyncio``. Requests go
straight to ``trax.services`` (:mod:`trax.client.inprocess`) as an operator of
one account, answered in the ``/v1`` wire form, so every object is the same
class the remote :class:`trax.Client` returns.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trax import display
from trax.client import models
from trax.client.api import Api, Collection, Root
from trax.client.bridge import BlockingExecutor, LoopThread
from trax.client.inprocess import LocalTransport, operator_for
from trax.domain.accounts import Account
from trax.runtime import Runtime
from trax.services import Principal
from trax.settings import Settings, load_settings

ConfigLike = str | os.PathLike[str] | Settings | Mapping[str, Any] | None


def _settings(config: ConfigLike, overrides: dict[str, Any]) -> Settings:
    if isinstance(config, Settings):
        if overrides:
            return Settings(**{**config.model_dump(), **overrides})
        return config
    if isinstance(config, Mapping):
        return load_settings(None, **{**dict(config), **overrides})
    return load_settings(config, **overrides)


class Tokens(Collection):
    """Media tokens for the ingest plane (``runtime.media_tokens``)."""

    def __init__(self, api: Api, transport: LocalTransport) -> None:
        super().__init__(api)
        self._transport = transport

    def mint(
        self,
        path: str | models.Source | None = None,
        action: str = "publish",
        *,
        source: models.Source | None = None,
        audience: str | None = None,
        ttl: int | None = None,
    ) -> Any:
        """Ingest credentials for a stream path (or a source): a token and ready-to-paste URLs."""
        target = source if source is not None else path
        stream_path = target.path if isinstance(target, models.Source) else target
        if not stream_path:
            raise ValueError("mint() needs a stream path or a source")

        async def go() -> models.IngestCredentials:
            wire = await self._transport.mint(stream_path, action, audience=audience, ttl=ttl)
            return self._api.wrap(wire, models.IngestCredentials)

        return self._api.run(go)


class Platform(Root):
    """A started runtime plus the ``/v1`` object model, acting as an operator of one account."""

    runtime: Runtime
    account: Account
    principal: Principal
    tokens: Tokens

    def __init__(self, runtime: Runtime, thread: LoopThread, *, account: str | None, wait: bool | None) -> None:
        self.runtime = runtime
        self._thread = thread
        self.account, self.principal = thread.run(operator_for(runtime, account))
        self._transport = LocalTransport(runtime, self.principal)
        self._attach(Api(self._transport, BlockingExecutor(thread, wait)))
        self.tokens = Tokens(self.api, self._transport)
        self._finalizer = weakref.finalize(self, _shutdown, thread, runtime)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a coroutine of your own on the platform's loop (e.g. over ``p.runtime.services``)."""
        return self._thread.run(coro, timeout)

    def close(self) -> None:
        """Stop the runtime (closing storage) and its loop thread. Safe to call twice."""
        self._finalizer()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> Platform:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return display.safe(
            lambda: (
                f"<trax Platform account={self.account.name!r} storage={self.runtime.settings.storage.backend}"
                f"{' closed' if self.closed else ''}>"
            ),
            "<trax Platform>",
        )

    def _repr_html_(self) -> str:
        def render() -> str:
            info = self.runtime.describe()
            rows = [("account", f"{self.account.name} ({self.account.id})")]
            rows += [(k, display.plain(v)) for k, v in info.items()]
            rows.append(("state", "closed" if self.closed else "running"))
            return display.html_record("trax platform", rows)

        return display.safe(render, "&lt;trax Platform&gt;")

    def watch(self, studio: Any, *, seconds: float = 10.0, interval: float = 1.0, until: str | None = None) -> Any:
        """Poll a studio's stream status, showing it live in the notebook; returns the history."""
        return watch(studio, seconds=seconds, interval=interval, until=until)


def _shutdown(thread: LoopThread, runtime: Runtime) -> None:
    if thread.closed:
        return
    try:
        if not thread.on_loop:
            thread.run(runtime.stop(), timeout=30)
    except Exception:
        pass
    finally:
        thread.close()


def connect(
    config: ConfigLike = None,
    *,
    account: str | None = None,
    transports: bool = False,
    wait: bool | None = None,
    **overrides: Any,
) -> Platform:
    """Start a deployment in this process and act as an operator of ``account``.

    ``config`` is a deployment file path, a :class:`~trax.settings.Settings`, a
    mapping of sections, or ``None`` for the built-in defaults (in memory).
    Keyword ``overrides`` replace sections (e.g. ``storage={...}``). The account
    is looked up by name or id and created when missing (``None``: the first
    account, or a new ``default``). ``transports=True`` also starts the ingest
    listeners the file enables. ``wait`` overrides when calls wait for their
    result (see :mod:`trax.client.bridge`).
    """
    settings = _settings(config, overrides)
    runtime = Runtime(settings)
    thread = LoopThread("trax-platform")
    try:
        thread.run(runtime.start(transports=transports))
        return Platform(runtime, thread, account=account, wait=wait)
    except BaseException:
        _shutdown(thread, runtime)
        raise


# --- watching a studio ------------------------------------------------------------------


@dataclass
class StatusHistory:
    """Stream-status samples of one studio over time; shows as a table, plots as a timeline."""

    studio_id: str
    samples: list[tuple[datetime, models.StreamStatus]] = field(default_factory=list)

    @property
    def latest(self) -> models.StreamStatus | None:
        return self.samples[-1][1] if self.samples else None

    def source_series(self) -> dict[str, list[tuple[datetime, str]]]:
        """Each source's status at each sample time."""
        series: dict[str, list[tuple[datetime, str]]] = {}
        for when, st in self.samples:
            for s in st.sources:
                series.setdefault(s.id, []).append((when, s.status))
        return series

    def plot(self, ax: Any = None) -> Any:
        """A step timeline of each source's status (matplotlib); returns the Axes."""
        return display.plot_timeline(self.source_series(), title=f"sources of {self.studio_id}", ax=ax)

    def _repr_html_(self) -> str:
        latest = self.latest
        head = f"{len(self.samples)} sample(s) of {self.studio_id}"
        return display.safe(
            lambda: display.html_rows(head, ["time", "studio", "live sources"], self._rows()), html_escape(head)
        ) + (latest._repr_html_() if latest else "")

    def _rows(self) -> list[list[str]]:
        return [[display.plain(t), st.status, str(len(st.live_sources))] for t, st in self.samples[-display.MAX_ROWS :]]

    def __repr__(self) -> str:
        return display.safe(
            lambda: display.text_rows(f"StatusHistory {self.studio_id}", ["time", "studio", "live"], self._rows()),
            "<StatusHistory>",
        )


def html_escape(text: str) -> str:
    import html

    return html.escape(text)


def watch(studio: Any, *, seconds: float = 10.0, interval: float = 1.0, until: str | None = None) -> StatusHistory:
    """Poll ``studio.stream_status()`` for ``seconds`` (or until a source reaches status ``until``).

    In a notebook the status table updates in place in the cell's output.
    """
    handle = _display_handle()
    history = StatusHistory(getattr(studio, "id", "?"))
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        status = studio.stream_status()
        status = status.result() if hasattr(status, "result") and callable(status.result) else status
        history.samples.append((datetime.now(UTC), status))
        if handle is not None:
            handle.update(_HtmlOnly(status._repr_html_()))
        if until is not None and any(s.status == until for s in status.sources):
            break
        if time.monotonic() + interval > deadline:
            break
        time.sleep(interval)
    return history


class _HtmlOnly:
    def __init__(self, html: str) -> None:
        self._html = html

    def _repr_html_(self) -> str:
        return self._html


def _display_handle() -> Any:
    """A display handle updated in place, when running under IPython."""
    try:
        from IPython import get_ipython
        from IPython.display import display as ipy_display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    return ipy_display(_HtmlOnly("<i>waiting for the first status…</i>"), display_id=True)  # type: ignore[no-untyped-call]
