"""A free loopback port, for servers started on the fly (notebooks, throwaway databases, tests, benchmarks)."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port free on ``host`` right now, chosen by the OS (TCP by default; ``SOCK_DGRAM`` for UDP)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
