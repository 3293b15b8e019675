"""Keyframe requests (RTCP PLI) to a WHIP publisher: to its media SSRC, repeated until a keyframe arrives.

A browser announces a retransmission stream next to its video (``a=ssrc-group:FID <media> <rtx>``) and sends
padding on it (bandwidth probes), often before any media. A PLI names one SSRC; one addressed to the RTX SSRC is
ignored by the encoder. And a PLI is a UDP datagram that may be lost, or arrive while the encoder is already busy:
Chrome may then send no keyframe for minutes, leaving every newcomer without a picture. So requests go to the
announced media SSRCs (or the active non-RTX ones) and are repeated every ``retry`` seconds, ``attempts`` times at
most, until a keyframe is seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)


def fid_ssrcs(sdp: str, kind: str = "video") -> tuple[set[int], set[int]]:
    """(media, rtx) SSRCs of the ``kind`` sections' ``a=ssrc-group:FID`` lines (RFC 5576: media first)."""
    from aiortc.sdp import SessionDescription

    media: set[int] = set()
    rtx: set[int] = set()
    with contextlib.suppress(Exception):  # an offer aiortc accepted parses; anything else just has no groups
        for section in SessionDescription.parse(sdp).media:
            if section.kind != kind:
                continue
            for group in section.ssrc_group:
                if group.semantic == "FID" and len(group.items) >= 2:
                    media.add(int(group.items[0]))
                    rtx.update(int(s) for s in group.items[1:])
            media.update(s.ssrc for s in section.ssrc if s.ssrc not in rtx)
    return media, rtx


class KeyframeRequester:
    """Asks one receiver's sender for a keyframe until one arrives (``keyframe_seen``) or ``attempts`` run out."""

    def __init__(self, receiver: Any, sdp: str, *, retry: float, attempts: int) -> None:
        self._receiver = receiver
        self._media, self._rtx = fid_ssrcs(sdp)
        self._retry = retry
        self._attempts = attempts
        self._seen = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_sent = -float("inf")
        self.sent = 0

    def targets(self) -> list[int]:
        """The media SSRCs: as announced, else the active sources that are not RTX."""
        if self._media:
            return sorted(self._media)
        active = [s.source for s in self._receiver.getSynchronizationSources()]
        return [s for s in active if s not in self._rtx][:1]

    def request(self) -> None:
        """Start asking (a request while one is under way joins it)."""
        if self._task is not None and not self._task.done():
            return
        self._seen.clear()
        self._task = asyncio.ensure_future(self._run())

    def keyframe_seen(self) -> None:
        self._seen.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # newcomers arriving one after another share the encoder's keyframes: at most one PLI per ``retry``
        wait = self._last_sent + self._retry - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        for _ in range(self._attempts):
            self._last_sent = loop.time()
            for ssrc in self.targets():
                self.sent += 1
                with contextlib.suppress(Exception):  # a closing transport: the next attempt or close ends it
                    await self._receiver._send_rtcp_pli(ssrc)
            try:
                await asyncio.wait_for(self._seen.wait(), timeout=self._retry)
                return
            except TimeoutError:
                continue
        log.info("no keyframe after %d requests to the WHIP publisher", self._attempts)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
