"""Child process for the kill -9 test: writes through the services forever, printing each acknowledged id.

Usage: python -m tests.foundation.sqlite_writer_child CONFIG.yaml
"""

from __future__ import annotations

import asyncio
import sys

from trax.runtime import Runtime
from trax.services import Principal


async def main(config: str) -> None:
    async with Runtime.from_file(config) as rt:
        acct = await rt.services.accounts.create("durable")
        op = Principal.operator(acct.id)
        print(f"account {acct.id}", flush=True)
        n = 0
        while True:
            n += 1
            studio = await rt.services.studios.create(op, name=f"studio {n}")
            # printed only after apply() returned: every printed id was acknowledged
            print(f"ack {studio.id}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
