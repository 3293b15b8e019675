"""Registers the ``srt`` transport (a built-in plugin; libsrt and PyAV load when it starts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trax.plugin_api import Backend, hookimpl

if TYPE_CHECKING:
    from trax.interfaces import Transport
    from trax.runtime import Runtime


def _factory(options: object, runtime: Runtime) -> Transport:
    from trax.ingest.srt.listener import SrtTransport
    from trax.ingest.srt.options import SrtOptions

    assert isinstance(options, SrtOptions)
    return SrtTransport(options, runtime)


@hookimpl
def trax_register_transports() -> list[Backend[Transport]]:
    from trax.ingest.srt.options import SrtOptions

    return [
        Backend(
            name="srt",
            factory=_factory,
            options=SrtOptions,
            description="SRT listener (libsrt via ctypes): MPEG-TS publish and read with streamid credentials",
        )
    ]
