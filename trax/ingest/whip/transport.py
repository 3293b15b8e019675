"""The ``whip`` transport: the WHIP/WHEP Litestar app on its own port, inside the server's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from trax.ingest.whip.ice import HostCandidates
from trax.ingest.whip.options import WhipOptions

if TYPE_CHECKING:
    from trax.ingest.whip.sessions import WebRtcPlane
    from trax.runtime import Runtime

log = logging.getLogger(__name__)


class WhipTransport:
    name = "whip"

    def __init__(self, options: WhipOptions, runtime: Runtime) -> None:
        self.options = options
        self.runtime = runtime
        self.host = options.host or runtime.settings.ingest.host
        self.port = options.port
        self.plane: WebRtcPlane | None = None
        self._candidates = HostCandidates(options.host_candidates)
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<WhipTransport {self.host}:{self.port} started={self._task is not None}>"

    @property
    def base_url(self) -> str:
        scheme = "https" if self.options.certfile else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        from trax.http_door import uvicorn_config
        from trax.ingest.whip.app import create_whip_app
        from trax.ingest.whip.rtc import check_aiortc
        from trax.ingest.whip.sessions import WebRtcPlane

        check_aiortc()
        rt = self.runtime
        self._candidates.install()
        self.plane = WebRtcPlane(self.options, rt.hub, lambda: rt.deps.new_id("req"))
        app = create_whip_app(
            self.plane,
            self.options,
            authorize=rt.media_tokens.authorize,
            path_exists=rt.services.sources.by_path,
            new_request_id=lambda: rt.deps.new_id("req"),
        )
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            self._candidates.uninstall()
            raise OSError(f"ingest.whip: cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        self.port = sock.getsockname()[1]
        config = uvicorn_config(
            app,
            "whip",
            self.options.http,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=False,
            ssl_certfile=str(self.options.certfile) if self.options.certfile else None,
            ssl_keyfile=str(self.options.keyfile) if self.options.keyfile else None,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="trax-whip-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the WHIP endpoint stopped while starting")
            await asyncio.sleep(0.01)
        log.info("WHIP/WHEP listening on %s", self.base_url)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self.plane is not None:
            await self.plane.close()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=10)
        self._task = None
        self._server = None
        self._candidates.uninstall()

    def ingest_urls(self, path: str, action: str, token: str) -> dict[str, str]:
        key = "whip" if action == "publish" else "whep"
        host = self.runtime.settings.ingest.public_host
        base = self.base_url if host is None else self.base_url.replace(self.host, host, 1)
        return {key: f"{base}/{path}/{key}?access_token={token}"}


class _EmbeddedServer:
    """uvicorn without its signal handlers: the process's main server owns SIGINT/SIGTERM."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        return Server(config)
