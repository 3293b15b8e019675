"""Registers the ``whip`` transport (``ingest.whip.enabled: true``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trax.ingest.whip.options import WhipOptions
from trax.plugin_api import Backend, hookimpl

if TYPE_CHECKING:
    from trax.runtime import Runtime


def _factory(options: WhipOptions, runtime: Runtime) -> Any:
    from trax.ingest.whip.transport import WhipTransport

    return WhipTransport(options, runtime)


@hookimpl
def trax_register_transports() -> list[Backend[Any]]:
    return [
        Backend(
            "whip",
            _factory,
            WhipOptions,
            description="WHIP publish and WHEP playback (WebRTC, aiortc) on their own HTTP port",
        )
    ]
