"""The HTTP door shared by every uvicorn in the process (/v1 and the WHIP/WHEP endpoint).

:func:`uvicorn_config` builds a ``uvicorn.Config`` with uvicorn's own limits set from
:class:`~trax.settings.HttpDoorSettings` and the protocol class of :mod:`.protocol` for what uvicorn
lacks. It sits beside the layers (like ``trax.ports``) so ``trax.server`` and ``trax.ingest`` can both
import it.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from trax.http_door.admission import Admission, address_key
from trax.http_door.protocol import protocol_class
from trax.settings import HttpDoorSettings

__all__ = ["Admission", "address_key", "protocol_class", "uvicorn_config"]


def uvicorn_config(app: Any, name: str, limits: HttpDoorSettings, *, parser: str = "auto", **options: Any) -> Any:
    """``uvicorn.Config(app, **options)`` behind the door; ``name`` labels the listener in logs."""
    admission = Admission(name, max_total=limits.max_connections, max_per_address=limits.max_connections_per_address)
    return uvicorn.Config(
        app,
        http=protocol_class(admission, limits, parser),
        # nothing here speaks WebSocket; an upgrade would also hand the socket to a protocol outside the door
        ws="none",
        limit_concurrency=limits.max_concurrency,
        timeout_keep_alive=limits.keep_alive_timeout_seconds,
        timeout_graceful_shutdown=limits.graceful_shutdown_seconds,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        backlog=limits.backlog,
        **options,
    )
