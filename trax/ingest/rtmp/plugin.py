"""Registers the built-in ``rtmp`` and ``rtmps`` transports."""

from __future__ import annotations

from typing import Any

from trax.ingest.rtmp.options import RtmpOptions, RtmpsOptions
from trax.interfaces import Transport
from trax.plugin_api import Backend, hookimpl


def _rtmp(options: Any, runtime: Any) -> Transport:
    from trax.ingest.rtmp.listener import make_listener

    return make_listener("rtmp", options, runtime)


def _rtmps(options: Any, runtime: Any) -> Transport:
    from trax.ingest.rtmp.listener import make_listener

    return make_listener("rtmps", options, runtime)


@hookimpl
def trax_register_transports() -> list[Backend[Transport]]:
    return [
        Backend("rtmp", _rtmp, RtmpOptions, description="RTMP ingest and playback (TCP, default port 1935)."),
        Backend("rtmps", _rtmps, RtmpsOptions, description="RTMP over TLS (default port 1936; certfile + keyfile)."),
    ]
