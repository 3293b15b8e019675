"""Every live studio's broadcast in this process: the runtime's :class:`~trax.interfaces.Broadcaster`.

The use cases call ``start`` / ``stop`` around their writes (go-live,
go-offline) and ``changed`` after an edit of a live studio's program, sources
or destinations. A studio's broadcast runs in the process that took it live;
with several processes on one database, the sources of a studio must be
published to that process (docs/broadcast.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from trax.broadcast.studio import BroadcastEnv, StudioBroadcast, finish_recording_file
from trax.domain.stream import ProgramState

log = logging.getLogger(__name__)


class Broadcasts:
    def __init__(self, env: BroadcastEnv) -> None:
        self.env = env
        self._studios: dict[str, StudioBroadcast] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<Broadcasts live={len(self._studios)}>"

    def studio(self, studio_id: str) -> StudioBroadcast | None:
        return self._studios.get(studio_id)

    async def start(self, account_id: str, studio_id: str) -> None:
        if studio_id in self._studios:
            return
        broadcast = StudioBroadcast(self.env, account_id, studio_id)
        self._studios[studio_id] = broadcast
        try:
            await broadcast.start()
        except Exception as exc:
            # the studio is live all the same; the pipeline's failure is its status and it is retried
            log.exception("studio %s: the broadcast could not start", studio_id)
            broadcast.state = ProgramState("error", f"The program could not start ({type(exc).__name__}).")
            broadcast.schedule()

    async def stop(self, account_id: str, studio_id: str) -> None:
        broadcast = self._studios.pop(studio_id, None)
        if broadcast is not None:
            await broadcast.stop()

    def changed(self, account_id: str, studio_id: str) -> None:
        broadcast = self._studios.get(studio_id)
        if broadcast is not None and broadcast.account_id == account_id:
            broadcast.schedule()

    def program_state(self, studio_id: str) -> ProgramState | None:
        broadcast = self._studios.get(studio_id)
        return None if broadcast is None else broadcast.state

    async def recover_recordings(self) -> int:
        """Store recordings a previous run of this process left behind (kill -9): their fragments play."""
        root = self.env.settings.recordings_dir
        files = await asyncio.to_thread(lambda: sorted(root.glob("*/asset_*.mp4")) if root.exists() else [])
        for file in files:
            log.info("storing recording %s left by an earlier run", file.stem)
            await finish_recording_file(self.env, file.parent.name, file.stem, file, None)
        return len(files)

    async def close(self) -> None:
        """Stop every studio's broadcast (the process is stopping); their studios stay as stored."""
        for studio_id in list(self._studios):
            broadcast = self._studios.pop(studio_id)
            with contextlib.suppress(Exception):
                await broadcast.stop()
