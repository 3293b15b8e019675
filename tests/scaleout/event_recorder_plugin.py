"""A one-file plugin for the scale-out tests: appends every domain event this process sees to a file.

The file is named by the ``TRAX_TEST_EVENT_LOG`` environment variable of the process.
"""

from __future__ import annotations

import json
import os
from typing import Any

from trax import hookimpl
from trax.domain.events import Event


@hookimpl
def trax_event(event: Event, runtime: Any) -> None:
    path = os.environ.get("TRAX_TEST_EVENT_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": event.id, "type": event.type, "data": event.data}) + "\n")
