"""A process that records a live hub path until it is killed: ``python -m tests.broadcast.record_child FILE``.

It starts a hub, plays a looping colour clip into it, records the path into
FILE and prints ``recording`` once the recorder runs. The test kills it with
SIGKILL and checks what the file still holds.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.broadcast.feeds import colour_clip, playing
from trax.broadcast.recorder import Recorder
from trax.ingest.hub import PathHub

PATH = "studios/studio_01JDQ4V1ZQ7Y9N6X3W2T8R5K0M/program"


async def main(file: Path) -> None:
    hub = PathHub(None, idle_timeout=5.0)
    clip = colour_clip("blue", seconds=2.0, audio_rate=48000)
    recorder = Recorder(hub, PATH, file, fragment_seconds=1.0)
    async with playing(hub, PATH, clip):
        await recorder.start()
        print("recording", flush=True)
        await asyncio.sleep(3600)  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
