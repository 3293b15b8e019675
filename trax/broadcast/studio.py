"""One live studio's broadcast: its program engine, media sources, egress per destination and recording.

``reconcile`` makes what runs match what is stored: it is called when the
studio goes live and whenever its program, a source or a destination changes,
and it only touches what changed (a new destination starts its egress and
nothing else; a changed key restarts just that egress). The program path's
publisher is opened once for the whole time on air, so readers (egress,
recorder, monitors) never see the program end because of an edit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from trax.broadcast.compositor import Compositor
from trax.broadcast.egress import Egress, EgressTarget, RtmpFanout
from trax.broadcast.passthrough import PassthroughProgram
from trax.broadcast.player import MediaPlayer
from trax.broadcast.recorder import Recorder
from trax.broadcast.slate import encode_silence, encode_slate_video
from trax.broadcast.targets import Unreachable, resolve
from trax.broadcast.timeline import Timeline
from trax.broadcast.tracks import AUDIO, AUDIO_TIME_BASE, VIDEO, VIDEO_TIME_BASE, program_tracks
from trax.domain.destinations import Destination, DestinationStatus
from trax.domain.paths import program_path
from trax.domain.program import SLATE_BLACK, OutputSettings, ProgramSettings
from trax.domain.sources import Source, SourceKind, SourceStatus
from trax.domain.stream import ProgramState
from trax.domain.studios import Studio
from trax.ingest.hub import PathHub, Publisher
from trax.ingest.media import Packet
from trax.interfaces import BlobStore, Platform, Storage
from trax.services import Services
from trax.services.program import program_source_ids
from trax.services.studios import all_children
from trax.settings import BroadcastSettings

log = logging.getLogger(__name__)

RESTART_MIN, RESTART_MAX = 1.0, 30.0


@dataclass
class BroadcastEnv:
    """What every studio's broadcast in this process shares."""

    hub: PathHub
    services: Services
    storage: Storage
    blobs: BlobStore
    platforms: dict[str, Platform]
    settings: BroadcastSettings
    slates: dict[tuple[OutputSettings, str], list[Packet]] = field(default_factory=dict)
    silence: bytes | None = None


@dataclass
class _Recording:
    asset_id: str
    file: Path
    recorder: Recorder


class StudioBroadcast:
    def __init__(self, env: BroadcastEnv, account_id: str, studio_id: str) -> None:
        self.env = env
        self.account_id = account_id
        self.studio_id = studio_id
        self.path = program_path(studio_id)
        self.state = ProgramState("starting")
        self.publisher: Publisher | None = None
        self.program: ProgramSettings | None = None
        self._timeline: Timeline | None = None
        self._engine: PassthroughProgram | Compositor | None = None
        self._engine_key: tuple[Any, ...] | None = None
        self._engine_task: asyncio.Task[None] | None = None
        self._engine_failures = 0
        self._composite_started = False
        """Whether the running compositor's first packet began its stretch of the program's timeline."""
        self._restart: asyncio.TimerHandle | None = None
        self._egress: dict[str, tuple[str, Egress]] = {}
        self._fanout = RtmpFanout()
        """Shared by this program's RTMP destinations: each packet is converted and chunked once for all."""
        self._players: dict[str, tuple[str, MediaPlayer]] = {}
        self._recording: _Recording | None = None
        self._lock = asyncio.Lock()
        self._pending = False
        self._reconciler: asyncio.Task[None] | None = None
        self._stopping = False

    def __repr__(self) -> str:
        return f"<StudioBroadcast {self.studio_id} {self.state.status} egress={len(self._egress)}>"

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        studio = await self._studio()
        if studio is None:
            return
        out = studio.program.output
        self._timeline = Timeline(out.fps)
        self.publisher = await self.env.hub.open_publisher(self.path, "program", program_tracks(out.width, out.height))
        self.publisher.on_keyframe_request = self._keyframe_request
        await self.reconcile()

    def schedule(self) -> None:
        """Reconcile soon; calls that come while one runs are folded into one more run."""
        self._pending = True
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.create_task(self._reconcile_loop(), name=f"trax-broadcast-{self.studio_id}")

    async def _reconcile_loop(self) -> None:
        while self._pending and not self._stopping:
            self._pending = False
            try:
                await self.reconcile()
            except Exception:
                log.exception("studio %s: applying a change to the broadcast failed", self.studio_id)

    async def reconcile(self) -> None:
        async with self._lock:
            if self._stopping:
                return
            studio = await self._studio()
            if studio is None:
                return
            sources = await all_children(self.env.services.deps, Source, self.account_id, self.studio_id)
            dests = await all_children(self.env.services.deps, Destination, self.account_id, self.studio_id)
            await self._apply_players(sources)
            await self._apply_engine(studio, sources)
            await self._apply_egress(dests)
            await self._apply_recording(studio)

    async def stop(self) -> None:
        """End egress and recording cleanly, then the program; bounded by ``stop_timeout_seconds`` each."""
        self._stopping = True
        if self._restart is not None:
            self._restart.cancel()
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconciler
        async with self._lock:
            await asyncio.gather(
                *(self._stop_egress(dst_id) for dst_id in list(self._egress)),
                self._finish_recording(),
                return_exceptions=True,
            )
            await self._stop_engine()
            for source_id in list(self._players):
                await self._stop_player(source_id)
            if self.publisher is not None:
                await self.publisher.close()
            self.state = ProgramState("stopped")

    async def _studio(self) -> Studio | None:
        return await self.env.storage.get(Studio, self.account_id, self.studio_id)

    # --- the program engine -----------------------------------------------------------------

    async def _apply_engine(self, studio: Studio, sources: list[Source]) -> None:
        program = studio.program
        self.program = program
        paths = {s.id: s.path for s in sources}
        placed = [paths[sid] for sid in program_source_ids(program, sources)]
        key = (program.composited, program.output, program.slate)
        if self._engine is not None and key != self._engine_key:
            await self._stop_engine()
        if self._engine is None:
            await self._start_engine(program, placed)
        engine = self._engine
        if isinstance(engine, PassthroughProgram):
            engine.put_on_air(placed[0] if placed else None)
        elif isinstance(engine, Compositor):
            engine.update(placed, program.layout)

    async def _start_engine(self, program: ProgramSettings, placed: list[str]) -> None:
        assert self.publisher is not None and self._timeline is not None
        self._engine_key = (program.composited, program.output, program.slate)
        self._timeline.frame = Fraction(1, program.output.fps)
        try:
            if program.composited:
                compositor = Compositor(
                    self.env.hub, placed, program.layout, program.output, publish=self._publish_composite
                )
                self._composite_started = False
                self._engine = compositor
                await compositor.start()
                self._engine_task = None
                self._watch(getattr(compositor, "task", None))
            else:
                slate = await self._slate(program)
                if self.env.silence is None:
                    self.env.silence = await asyncio.to_thread(encode_silence)
                passthrough = PassthroughProgram(
                    self.env.hub,
                    self.publisher,
                    fps=program.output.fps,
                    audio_bitrate=program.output.audio_bitrate,
                    slate=slate,
                    silence=self.env.silence,
                    timeline=self._timeline,
                )
                passthrough.put_on_air(placed[0] if placed else None)
                self._engine = passthrough
                task = asyncio.create_task(passthrough.run(), name=f"trax-program-{self.studio_id}")
                self._engine_task = task
                self._watch(task)
            self.state = ProgramState("running")
        except Exception as exc:
            self._engine = None
            self._engine_failed(exc)

    def _watch(self, task: asyncio.Task[None] | None) -> None:
        if task is None:
            return

        def done(t: asyncio.Task[None]) -> None:
            if t.cancelled() or self._stopping or self._engine_task is not t:
                return
            exc = t.exception()
            if exc is not None:
                self._engine = None
                self._engine_failed(exc)

        task.add_done_callback(done)

    def _engine_failed(self, exc: BaseException) -> None:
        """Log with the studio id, show it in stream-status, and try again with backoff."""
        self._engine_failures += 1
        log.error(
            "studio %s: the program pipeline failed (%s); restarting",
            self.studio_id,
            type(exc).__name__,
            exc_info=exc,
        )
        self.state = ProgramState("error", f"The program pipeline failed ({type(exc).__name__}); restarting.")
        delay = min(RESTART_MAX, RESTART_MIN * 2 ** (self._engine_failures - 1)) * random.uniform(0.5, 1.0)
        self._engine_key = None
        if not self._stopping:
            self._restart = asyncio.get_running_loop().call_later(delay, self.schedule)

    async def _stop_engine(self) -> None:
        engine, task = self._engine, self._engine_task
        self._engine, self._engine_task, self._engine_key = None, None, None
        if isinstance(engine, Compositor):
            with contextlib.suppress(Exception):
                await engine.stop()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _publish_composite(self, packet: Packet) -> None:
        """The compositor's packets, on the program's one timeline (it may follow a passthrough stretch)."""
        timeline, publisher = self._timeline, self.publisher
        if timeline is None or publisher is None:
            return
        tb = VIDEO_TIME_BASE if packet.track == VIDEO else AUDIO_TIME_BASE
        if not self._composite_started:
            self._composite_started = True
            timeline.begin(packet.dts * tb)
        if packet.track == VIDEO:
            stamped = timeline.video(packet.pts * tb, packet.dts * tb)
            if stamped is not None:
                publisher.send(Packet(VIDEO, packet.data, stamped[0], stamped[1], packet.keyframe))
        elif packet.track == AUDIO:
            pts = timeline.audio(packet.pts * tb)
            if pts is not None:
                publisher.send(Packet(AUDIO, packet.data, pts, pts, True))

    def _keyframe_request(self) -> None:
        engine = self._engine
        request = getattr(engine, "request_keyframe", None)
        if callable(request):
            request()

    async def _slate(self, program: ProgramSettings) -> list[Packet]:
        key = (program.output, program.slate)
        cached = self.env.slates.get(key)
        if cached is not None:
            return cached
        picture = None
        if program.slate != SLATE_BLACK:
            picture = await self._slate_picture(program.slate)
        packets = await asyncio.to_thread(encode_slate_video, program.output, picture)
        if len(self.env.slates) >= 16:
            self.env.slates.clear()
        self.env.slates[key] = packets
        return packets

    async def _slate_picture(self, asset_id: str) -> Any | None:
        file = await self._asset_file(asset_id)
        if file is None:
            return None
        return await asyncio.to_thread(_first_picture, file)

    # --- media sources ---------------------------------------------------------------------

    async def _apply_players(self, sources: list[Source]) -> None:
        wanted = {s.id: s for s in sources if s.kind is SourceKind.MEDIA and s.media_asset_id}
        for source_id in list(self._players):
            asset_id, _ = self._players[source_id]
            if source_id not in wanted or wanted[source_id].media_asset_id != asset_id:
                await self._stop_player(source_id)
        for source_id, src in wanted.items():
            entry = self._players.get(source_id)
            if entry is not None:
                entry[1].set_loop(src.loop)
                entry[1].set_playing(src.playing)
                continue
            assert src.media_asset_id is not None
            file = await self._asset_file(src.media_asset_id)
            if file is None:
                await self.env.services.sources.set_status(
                    src.path, SourceStatus.ERROR, "The media asset is missing or not ready."
                )
                continue
            player = MediaPlayer(self.env.hub, src.path, file, loop=src.loop, playing=src.playing)
            self._players[source_id] = (src.media_asset_id, player)
            try:
                await player.start()
            except Exception:
                log.exception("studio %s: media source %s could not start", self.studio_id, source_id)

    async def _stop_player(self, source_id: str) -> None:
        entry = self._players.pop(source_id, None)
        if entry is not None:
            with contextlib.suppress(Exception):
                await entry[1].stop()

    async def _asset_file(self, asset_id: str) -> Path | None:
        """A local copy of a ready asset's bytes (kept in ``media_cache_dir``; assets never change)."""
        asset = await self.env.services.media.asset_for_playback(self.account_id, asset_id)
        if asset is None or asset.blob_key is None:
            return None
        cache = self.env.settings.media_cache_dir / self.account_id
        file = cache / asset.id
        if await asyncio.to_thread(file.exists):
            return file
        await asyncio.to_thread(cache.mkdir, parents=True, exist_ok=True)
        part = file.with_suffix(".part")
        try:
            with part.open("wb") as fh:
                async for chunk in self.env.blobs.open_read(asset.blob_key):
                    await asyncio.to_thread(fh.write, chunk)
            await asyncio.to_thread(part.replace, file)
        except Exception:
            log.exception("studio %s: media asset %s could not be read", self.studio_id, asset_id)
            part.unlink(missing_ok=True)
            return None
        return file

    # --- egress -----------------------------------------------------------------------------

    async def _apply_egress(self, dests: list[Destination]) -> None:
        live = {d.id: d for d in dests if d.enabled}
        for dst_id in list(self._egress):
            if dst_id not in live:
                await self._stop_egress(dst_id, report=any(d.id == dst_id for d in dests))
        for dst in live.values():
            resolved = await resolve(dst, self.env.platforms, self.env.storage)
            if isinstance(resolved, Unreachable):
                if dst.id in self._egress:
                    await self._stop_egress(dst.id, report=False)
                await self._status(dst.id, "error", resolved.code, resolved.message)
                continue
            kind, target = resolved
            # A fingerprint of the secret-bearing target, so an edited key restarts just this egress;
            # the digest stays in memory and is never logged.
            fingerprint = hashlib.sha256(
                "\x00".join([kind, target.url, target.streamid or "", target.passphrase or ""]).encode()
            ).hexdigest()
            current = self._egress.get(dst.id)
            if current is not None and current[0] == fingerprint:
                continue
            if current is not None:
                await self._stop_egress(dst.id, report=False)
            self._start_egress(dst, fingerprint, EgressTarget(kind, target.url, target.streamid, target.passphrase))

    def _start_egress(self, dst: Destination, fingerprint: str, target: EgressTarget) -> None:
        s = self.env.settings

        async def on_status(status: str, code: str | None, message: str | None) -> None:
            await self._status(dst.id, status, code, message)

        egress = Egress(
            self.env.hub,
            self.path,
            target,
            on_status,
            label=f"{self.studio_id}/{dst.id}",
            queue_packets=s.egress_queue_packets,
            connect_timeout=s.connect_timeout_seconds,
            backoff_min=s.reconnect_min_seconds,
            backoff_max=s.reconnect_max_seconds,
            tls_verify=s.tls_verify,
            fanout=self._fanout,
        )
        self._egress[dst.id] = (fingerprint, egress)
        task = asyncio.create_task(egress.start(), name=f"trax-egress-start-{dst.id}")
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _stop_egress(self, dst_id: str, *, report: bool = True) -> None:
        entry = self._egress.pop(dst_id, None)
        if entry is None:
            return
        try:
            async with asyncio.timeout(self.env.settings.stop_timeout_seconds):
                await entry[1].stop()
        except Exception:
            log.warning("studio %s: destination %s did not stop cleanly", self.studio_id, dst_id)
        if report:
            await self._status(dst_id, "idle", None, None)

    async def _status(self, dst_id: str, status: str, code: str | None, message: str | None) -> None:
        try:
            await self.env.services.destinations.set_status(
                self.account_id, dst_id, DestinationStatus(status), message, code=code
            )
        except Exception:
            log.exception("studio %s: recording destination %s's status failed", self.studio_id, dst_id)

    # --- recording ------------------------------------------------------------------------

    async def _apply_recording(self, studio: Studio) -> None:
        if studio.program.record and self._recording is None:
            await self._start_recording(studio)
        elif not studio.program.record and self._recording is not None:
            await self._finish_recording()

    async def _start_recording(self, studio: Studio) -> None:
        asset = await self.env.services.media.begin_recording(self.account_id, self.studio_id, studio.name)
        folder = self.env.settings.recordings_dir / self.account_id
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        file = folder / f"{asset.id}.mp4"
        recorder = Recorder(self.env.hub, self.path, file)
        self._recording = _Recording(asset.id, file, recorder)
        await recorder.start()
        log.info("studio %s: recording into %s", self.studio_id, asset.id)

    async def _finish_recording(self) -> None:
        rec, self._recording = self._recording, None
        if rec is None:
            return
        duration: float | None = None
        try:
            async with asyncio.timeout(self.env.settings.stop_timeout_seconds):
                result = await rec.recorder.stop()
            duration = result.duration_seconds
        except Exception:
            log.exception("studio %s: the recording %s did not end cleanly", self.studio_id, rec.asset_id)
        await finish_recording_file(self.env, self.account_id, rec.asset_id, rec.file, duration)


async def finish_recording_file(
    env: BroadcastEnv, account_id: str, asset_id: str, file: Path, duration: float | None
) -> None:
    """Move a recording file into the blob store; its asset turns ``ready``. The file is removed after."""
    if duration is None:
        duration = await asyncio.to_thread(probe_duration, file)
    try:
        await env.services.media.finish_recording(account_id, asset_id, _read_file(file), duration_seconds=duration)
    except Exception:
        log.exception("recording %s could not be stored; its file is kept", asset_id)
        return
    await asyncio.to_thread(file.unlink, missing_ok=True)


async def _read_file(file: Path) -> AsyncIterator[bytes]:
    try:
        fh = await asyncio.to_thread(file.open, "rb")
    except FileNotFoundError:
        return
    with fh:
        while chunk := await asyncio.to_thread(fh.read, 1024 * 1024):
            yield chunk


def probe_duration(file: Path) -> float | None:
    """Duration of what a (possibly cut-off) fragmented MP4 holds, from its video packets."""
    import av

    first = last = None
    try:
        with av.open(str(file)) as container:
            stream = next((s for s in container.streams if s.type == "video"), None)
            if stream is None:
                return None
            for packet in container.demux(stream):
                if packet.dts is None:
                    continue
                t = float(packet.dts * packet.time_base)
                first = t if first is None else first
                last = t
    except Exception:
        return None
    if first is None or last is None:
        return None
    return max(0.0, last - first)


def _first_picture(file: Path) -> Any | None:
    import av

    try:
        with av.open(str(file)) as container:
            for frame in container.decode(video=0):
                return frame
    except Exception:
        log.warning("the slate asset has no picture trax can decode; showing black")
    return None
