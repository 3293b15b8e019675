"""A close callback that its watcher unregisters is not kept (nor called) by a long-lived publisher."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tests.ingest.test_hub import Sink
from trax.ingest.hub import PathHub
from trax.ingest.media import Track

pytestmark = pytest.mark.anyio


async def test_forgotten_close_callbacks_are_not_called() -> None:
    hub = PathHub(Sink())
    pub = await hub.open_publisher("inputs/x", "whip", [Track(0, "video", "h264", Fraction(1, 90000))])
    called: list[str] = []
    # a thousand viewers come and go on a 24/7 publisher; one stays
    for n in range(1000):
        forget = pub.on_close(lambda _reason, n=n: called.append(f"left {n}"))
        forget()
        forget()  # twice is harmless
    pub.on_close(lambda _reason: called.append("stayed"))
    await pub.close()
    assert called == ["stayed"]
    await hub.close()
