"""ICE configuration: servers from config only, chosen host-candidate addresses, ``Link`` headers.

aiortc falls back to a public STUN server when given no ICE servers, and
aioice never offers 127.0.0.1 as a host candidate (both seen in our lab runs).
Both are wrong for a server that must also work on loopback, so the
configuration is always explicit here. aioice reads host addresses from a
module-level function; :class:`HostCandidates` swaps it for the configured
list while the transport runs and puts the original back on stop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from trax.ingest.whip.options import IceServer


def rtc_configuration(servers: Sequence[IceServer]) -> Any:
    from aiortc import RTCConfiguration, RTCIceServer

    return RTCConfiguration(
        iceServers=[RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in servers]
    )


def link_headers(servers: Sequence[IceServer]) -> list[str]:
    """RFC 9725 section 4.6: one ``Link: <url>; rel="ice-server"`` per URL, TURN credentials as attributes."""
    out: list[str] = []
    for s in servers:
        for url in s.urls:
            value = f'<{url}>; rel="ice-server"'
            if s.username is not None and url.startswith(("turn:", "turns:")):
                value += f'; username="{_quote(s.username)}"; credential="{_quote(s.credential or "")}"'
                value += '; credential-type="password"'
            out.append(value)
    return out


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class HostCandidates:
    """Restrict aioice's host candidates to ``addresses`` while installed."""

    def __init__(self, addresses: Sequence[str] | None) -> None:
        self.addresses = list(addresses) if addresses is not None else None
        self._original: Callable[..., list[str]] | None = None

    def install(self) -> None:
        if self.addresses is None or self._original is not None:
            return
        import aioice.ice

        wanted = list(self.addresses)
        self._original = aioice.ice.get_host_addresses

        def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
            return [a for a in wanted if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

        aioice.ice.get_host_addresses = get_host_addresses

    def uninstall(self) -> None:
        if self._original is None:
            return
        import aioice.ice

        aioice.ice.get_host_addresses = self._original
        self._original = None
