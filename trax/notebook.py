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

import html
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
from trax.client.bridge import BlockingExecutor, Call, LoopThread
from trax.client.inprocess import LocalTransport, operator_for
from trax.domain.accounts import Account
from trax.ports import free_port
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
        if isinstance(target, Call):
            # a source straight from ``studio.sources.create(...)`` is still its pending call here
            target = target.result()
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

    def watch(
        self,
        studio: Any,
        *,
        seconds: float = 10.0,
        interval: float = 1.0,
        until: str | None = None,
        source: Any = None,
    ) -> Any:
        """Poll a studio's stream status, showing it live in the notebook; returns the history."""
        return watch(studio, seconds=seconds, interval=interval, until=until, source=source)


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
            lambda: display.html_rows(head, ["time", "studio", "live sources"], self._rows()), html.escape(head)
        ) + (latest._repr_html_() if latest else "")

    def _rows(self) -> list[list[str]]:
        return [[display.plain(t), st.status, str(len(st.live_sources))] for t, st in self.samples[-display.MAX_ROWS :]]

    def __repr__(self) -> str:
        return display.safe(
            lambda: display.text_rows(f"StatusHistory {self.studio_id}", ["time", "studio", "live"], self._rows()),
            "<StatusHistory>",
        )


def watch(
    studio: Any,
    *,
    seconds: float = 10.0,
    interval: float = 1.0,
    until: str | None = None,
    source: Any = None,
) -> StatusHistory:
    """Poll ``studio.stream_status()`` for ``seconds``, or until a source reaches status ``until``
    (``source``, a source or its id, narrows that to one source).

    In a notebook the status table updates in place in the cell's output.
    """
    wanted = getattr(source, "id", source)
    handle = _display_handle()
    history = StatusHistory(getattr(studio, "id", "?"))
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        status = studio.stream_status()
        status = status.result() if hasattr(status, "result") and callable(status.result) else status
        history.samples.append((datetime.now(UTC), status))
        if handle is not None:
            handle.update(status)
        if until is not None and any(s.status == until for s in status.sources if wanted in (None, s.id)):
            break
        if time.monotonic() + interval > deadline:
            break
        time.sleep(interval)
    return history


class _HtmlOnly:
    def __init__(self, markup: str, text: str = "") -> None:
        self._html = markup
        self._text = text

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._text


def _display_handle() -> Any:
    """A display handle updated in place, when running under IPython."""
    try:
        from IPython import get_ipython
        from IPython.display import display as ipy_display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    return ipy_display(
        _HtmlOnly("<i>waiting for the first status…</i>", "waiting for the first status…"), display_id=True
    )  # type: ignore[no-untyped-call]


# --- a `trax serve` for a notebook ------------------------------------------------------


def _die_with_parent() -> None:
    # Linux: the server gets SIGTERM if the kernel that started it dies, so no orphan keeps the port
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LocalServer:
    """``trax serve`` as a child process on a free loopback port, for notebooks and scripts.

    ``with LocalServer(config, workdir) as server: Client(server.base_url, key)``;
    stopped on ``stop()``, at exit, or when this process dies.
    """

    def __init__(
        self, config: Mapping[str, Any], workdir: str | os.PathLike[str], *, startup_timeout: float = 60.0
    ) -> None:
        from pathlib import Path

        import yaml

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in config.items()}
        server = dict(data.get("server") or {})
        server.setdefault("host", "127.0.0.1")
        server.setdefault("port", free_port(host=server["host"]))
        data["server"] = server
        self.host, self.port = str(server["host"]), int(server["port"])
        self.config_path = self.workdir / f"trax-{self.port}.yaml"
        self.config_path.write_text(yaml.safe_dump(data))
        self.log_path = self.workdir / f"trax-{self.port}.log"
        self.startup_timeout = startup_timeout
        self.proc: Any = None
        self._finalizer: Any = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def cli(self, *args: str) -> Any:
        """``trax ARGS -c CONFIG --json`` against this deployment; the parsed JSON answer."""
        import json
        import subprocess
        import sys

        cmd = [sys.executable, "-m", "trax.cli", *args, "-c", str(self.config_path), "--json"]
        done = subprocess.run(cmd, cwd=self.workdir, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"trax {args[0]} failed: {display.shorten(done.stderr.strip(), 400)}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    def start(self) -> LocalServer:
        import subprocess
        import sys

        import httpx

        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trax.cli", "serve", str(self.config_path)],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # only sets the parent-death signal
            )
        self._finalizer = weakref.finalize(self, _terminate, self.proc)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"trax serve exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.base_url + "/v1/health", timeout=1.0).status_code in (200, 503):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"trax serve did not answer within {self.startup_timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.proc is not None and self.proc.poll() is None else "stopped"
        return f"<LocalServer {self.base_url} {state}>"


def _terminate(proc: Any) -> None:
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
