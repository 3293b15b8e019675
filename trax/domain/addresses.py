"""What one client is, for limits keyed by caller address (connection caps, failed-login throttles).

An IPv4 address counts as one client; so does an IPv6 /64, which one host usually controls whole
(SLAAC, privacy addresses), so rotating through a /64 does not multiply a quota. An IPv4-mapped IPv6
address is its IPv4 address. Every listener (HTTP, RTMP, SRT) and the /v1 gate use this one rule.
"""

from __future__ import annotations

import ipaddress


def address_key(host: str) -> str:
    """The unit a per-address limit applies to: the IPv4 address, or the /64 an IPv6 address is in."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host[:64]  # not an address (a Unix socket path, say): itself, bounded
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)
