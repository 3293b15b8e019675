"""The Python SDK for ``/v1``: :class:`Client` (plain code, notebooks) and :class:`AsyncClient`.

Both share one object model (:mod:`trax.client.models`) with the in-process
platform ``trax.connect(...)``.
"""

from __future__ import annotations

from trax.client.aio import AsyncClient
from trax.client.bridge import Call
from trax.client.sync import Client

__all__ = ["AsyncClient", "Call", "Client"]
