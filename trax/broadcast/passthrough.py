"""The ``single`` program with ``passthrough``: the on-air source's packets, forwarded, never re-encoded.

One task, one loop, three states: a source is *on air* (its packets go out
with the program's timestamps), a source is *pending* (the program switches
to it at its next keyframe, from a fresh reader, so the newcomer's cached GOP
never bursts out), or nothing is on air and the pre-encoded slate loops in
real time. Audio the program cannot forward (Opus, AAC in another
configuration) is converted; a source without audio gets silence. The
program's output tracks never change, so destinations keep one connection
through every switch, drop-out and return.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from fractions import Fraction

from trax.broadcast.audio import AudioConformer, forwardable
from trax.broadcast.slate import silence_packet
from trax.broadcast.timeline import Timeline
from trax.broadcast.tracks import AAC_FRAME, AUDIO, AUDIO_TIME_BASE, VIDEO
from trax.ingest.hub import PathHub, Publisher, Reader
from trax.ingest.media import Packet, Track

log = logging.getLogger(__name__)

STALL_SECONDS = 1.0
"""A source that sends nothing for this long is off the air: the slate takes its place."""
AUDIO_LEAD = Fraction(1, 20)
"""Silence is sent up to this far ahead of the picture, so players never starve."""
POLL_SECONDS = 0.05


class _Feed:
    """A reader of one source path and how its tracks map onto the program's."""

    def __init__(self, reader: Reader, audio_bitrate: int) -> None:
        self.reader = reader
        self.path = reader.path
        self.audio_bitrate = audio_bitrate
        self.video: Track | None = None
        self.audio: Track | None = None
        self.conformer: AudioConformer | None = None
        self.last_packet_at = time.monotonic()
        self.unusable: str | None = None

    def bind(self) -> bool:
        """Pick the tracks once the path has a publisher; ``False`` while it has none."""
        pub = self.reader.publisher
        if pub is None:
            return False
        if self.video is None and self.unusable is None:
            self.video = next((t for t in pub.tracks if t.kind == "video"), None)
            audios = [t for t in pub.tracks if t.kind == "audio"]
            # a WHIP guest carries Opus and, for readers like this one, the same sound as AAC: take what forwards
            self.audio = next((t for t in audios if forwardable(t)), audios[0] if audios else None)
            if self.video is None or self.video.codec != "h264":
                codec = self.video.codec if self.video is not None else "no video"
                self.unusable = f"the source sends {codec}; passthrough forwards H.264 only (set passthrough: false)"
                self.video = None
            elif self.audio is not None and not forwardable(self.audio):
                self.conformer = AudioConformer(self.audio, self.audio_bitrate)
        return True


class PassthroughProgram:
    """Publishes ``publisher`` from the source path named by :meth:`put_on_air`, or the slate."""

    def __init__(
        self,
        hub: PathHub,
        publisher: Publisher,
        *,
        fps: int,
        audio_bitrate: int,
        slate: Sequence[Packet],
        silence: bytes,
        timeline: Timeline | None = None,
    ) -> None:
        self.hub = hub
        self.publisher = publisher
        self.audio_bitrate = audio_bitrate
        self.timeline = timeline if timeline is not None else Timeline(fps)
        self._slate = list(slate)
        self._silence = silence
        self._want: str | None = None
        self._on_air: _Feed | None = None
        self._pending: _Feed | None = None
        self._slate_index = 0
        self._slate_started = 0.0
        self._slate_sent = Fraction(0)
        self._slate_active = False
        self._wake = asyncio.Event()
        self.sent = 0
        self.switches = 0
        self.problem: str | None = None
        """Why the wanted source cannot go on air (shown in the program's status), if it cannot."""

    def request_keyframe(self) -> None:
        """A program reader wants a picture now: ask the on-air source (the slate has one every second)."""
        if self._on_air is not None:
            self._on_air.reader.request_keyframe()

    @property
    def on_air(self) -> str | None:
        return self._on_air.path if self._on_air is not None else None

    def put_on_air(self, path: str | None) -> None:
        """Switch to ``path`` at its next keyframe (``None``: the slate)."""
        if path != self._want:
            self._want = path
            self._wake.set()

    async def run(self) -> None:
        try:
            while not self.publisher.closed:
                self._follow_wish()
                busy = self._poll_pending()
                busy = self._forward_on_air() or busy
                if self._on_air is None:
                    self._send_slate()
                self._fill_silence()
                if not busy:
                    await self._idle()
        finally:
            for feed in (self._on_air, self._pending):
                if feed is not None:
                    feed.reader.close()

    # --- which source ---------------------------------------------------------------

    def _follow_wish(self) -> None:
        want = self._want
        if self._pending is not None and self._pending.path != want:
            self._pending.reader.close()
            self._pending = None
        if want is None:
            if self._on_air is not None:
                self._off_air()
            return
        on_air = self._on_air.path if self._on_air is not None else None
        if want != on_air and self._pending is None:
            self._pending = self._open(want)

    def _open(self, path: str) -> _Feed:
        reader = self.hub.open_reader(path)
        # The newcomer's cached GOP is already queued: a switch waits for a fresh keyframe instead.
        reader.discard_queued()
        reader.request_keyframe()
        return _Feed(reader, self.audio_bitrate)

    def _poll_pending(self) -> bool:
        feed = self._pending
        if feed is None or not feed.bind():
            return False
        if feed.unusable is not None:
            self.problem = feed.unusable
            feed.reader.discard_queued()
            return False
        busy = False
        try:
            while (packet := feed.reader.get_nowait()) is not None:
                busy = True
                if packet.track == feed.video.index and packet.keyframe:  # type: ignore[union-attr]
                    self._switch_to(feed, packet)
                    return True
        except StopAsyncIteration:  # it left before going on air: wait for it again
            feed.reader.close()
            self._pending = self._open(feed.path)
        return busy

    def _switch_to(self, feed: _Feed, keyframe: Packet) -> None:
        if self._on_air is not None:
            self._on_air.reader.close()
        self._on_air, self._pending = feed, None
        self._slate_active = False
        self.problem = None
        self.switches += 1
        assert feed.video is not None
        self.timeline.begin(keyframe.dts * feed.video.time_base)
        feed.last_packet_at = time.monotonic()
        self._forward(feed, keyframe)
        log.info("%s: %s is on air", self.publisher.path, feed.path)

    def _off_air(self) -> None:
        """The on-air source left or stalled: the slate until it (or another) sends a keyframe."""
        feed = self._on_air
        self._on_air = None
        if feed is None:
            return
        feed.reader.close()
        if self._want == feed.path and self._pending is None:
            self._pending = self._open(feed.path)

    # --- forwarding -------------------------------------------------------------------

    def _forward_on_air(self) -> bool:
        feed = self._on_air
        if feed is None:
            return False
        count = 0
        try:
            while (packet := feed.reader.get_nowait()) is not None:
                self._forward(feed, packet)
                count += 1
        except StopAsyncIteration:
            log.info("%s: %s left the air", self.publisher.path, feed.path)
            self._off_air()
            return True
        now = time.monotonic()
        if count:
            feed.last_packet_at = now
        elif now - feed.last_packet_at > STALL_SECONDS:
            log.info("%s: %s stalled; showing the slate", self.publisher.path, feed.path)
            self._off_air()
        return count > 0

    def _forward(self, feed: _Feed, packet: Packet) -> None:
        if feed.video is not None and packet.track == feed.video.index:
            tb = feed.video.time_base
            stamped = self.timeline.video(packet.pts * tb, packet.dts * tb)
            if stamped is not None:
                self._send(Packet(VIDEO, packet.data, stamped[0], stamped[1], packet.keyframe))
        elif feed.audio is not None and packet.track == feed.audio.index:
            if feed.conformer is None:
                self._send_audio(packet.pts * feed.audio.time_base, packet.data)
            else:
                for seconds, data in feed.conformer.push(packet):
                    self._send_audio(seconds, data)

    def _send_audio(self, seconds: Fraction, data: bytes) -> None:
        pts = self.timeline.audio(seconds)
        if pts is not None:
            self._send(Packet(AUDIO, data, pts, pts, True))

    def _send(self, packet: Packet) -> None:
        self.sent += 1
        self.publisher.send(packet)

    # --- the slate and silence ----------------------------------------------------------

    def _send_slate(self) -> None:
        """Loop the slate clip in real time, each pass continuing the program's clock."""
        now = time.monotonic()
        if not self._slate_active:
            self._slate_active = True
            self._slate_index = 0
            self._slate_started = now
            self._slate_sent = Fraction(0)
            self.timeline.begin(Fraction(0))
        while True:
            packet = self._slate[self._slate_index]
            at = self._slate_sent  # the clip's own timestamps are 0, 1/fps, ...: each pass continues them
            if self._slate_started + float(at) > now:
                return
            stamped = self.timeline.video(at, at)
            if stamped is not None:
                self._send(Packet(VIDEO, packet.data, stamped[0], stamped[1], packet.keyframe))
            self._slate_index = (self._slate_index + 1) % len(self._slate)
            self._slate_sent += self.timeline.frame

    def _fill_silence(self) -> None:
        """Silence where the program has no sound of its own (the slate, a source without audio)."""
        feed = self._on_air
        if feed is not None and feed.audio is not None:
            return
        horizon = self.timeline.video_seconds() + AUDIO_LEAD
        step = AAC_FRAME
        while True:
            nxt = 0 if self.timeline.last_audio is None else self.timeline.last_audio + step
            if nxt * AUDIO_TIME_BASE > horizon:
                return
            if self.timeline.audio_at(nxt) is None:
                return
            self._send(silence_packet(self._silence, nxt))

    async def _idle(self) -> None:
        feed = self._on_air
        self._wake.clear()
        if feed is not None:
            await feed.reader.wait(POLL_SECONDS)
            return
        # On the slate: sleep until its next frame is due, one wake-up a frame, unless a waiting
        # source sends something (its keyframe ends the slate) or a switch is asked for.
        due = self._slate_started + float(self._slate_sent) - time.monotonic()
        delay = min(max(due, 0.001), POLL_SECONDS)
        pending = self._pending
        if pending is not None and pending.reader.publisher is not None:
            await pending.reader.wait(delay)
            return
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
