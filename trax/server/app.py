"""The Litestar app factory (minimal until the /v1 API issue fills it in)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get

from trax import __version__
from trax.runtime import Runtime


def create_app(runtime: Runtime, *, start_transports: bool = False) -> Litestar:
    @get("/v1/health", sync_to_thread=False)
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "apiVersion": "1.0.0"}

    async def startup() -> None:
        await runtime.start(transports=start_transports)

    async def shutdown() -> None:
        await runtime.stop()

    return Litestar([health], on_startup=[startup], on_shutdown=[shutdown])
