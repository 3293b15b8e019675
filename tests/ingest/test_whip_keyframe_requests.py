"""Keyframe requests (RTCP PLI) to a WHIP publisher go to its media SSRC, not its RTX one, and are repeated until a
keyframe comes. A late WHEP viewer depends on them: the publisher here (aiortc, VP8) makes keyframes only when asked.

Like Chrome, the publisher announces RTX (``a=ssrc-group:FID``) and sends an RTX padding packet before any media
(Chrome's bandwidth probes do), and, like any sender, ignores a PLI addressed to an SSRC that is not its media one
(aiortc routes RTCP by SSRC). It also loses the first PLI that does reach it, so a single request is not enough.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from tests.ingest.whip_support import wait_for, whip_plane
from trax.ingest.whip.client import PatternTrack, WhepPlayer, WhipPublisher

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


class LateStart:
    """The pattern, starting ``delay`` s after the first ``recv`` (so the RTX probe goes out first)."""

    kind = "video"

    def __new__(cls, delay: float) -> Any:
        inner = PatternTrack(320, 240, 30)
        recv = inner.recv

        async def late_recv() -> Any:
            if delay and not getattr(inner, "_started", False):
                await asyncio.sleep(delay)
                inner._started = True
            return await recv()

        inner.recv = late_recv
        return inner


async def _probe_on_rtx(pub: WhipPublisher) -> None:
    """A padding-only RTP packet on the RTX SSRC, as Chrome sends before and between frames."""
    video = next(m for m in SessionDescription.parse(pub.pc.localDescription.sdp).media if m.kind == "video")
    [fid] = [g for g in video.ssrc_group if g.semantic == "FID"]
    rtx_pt = next(c.payloadType for c in video.rtp.codecs if c.mimeType.lower() == "video/rtx")
    sender = pub.pc.getTransceivers()[0].sender
    await wait_for(lambda: pub.pc.connectionState == "connected", within=10)
    packet = RtpPacket(payload_type=rtx_pt, sequence_number=1, timestamp=0, ssrc=int(fid.items[1]))
    packet.padding_size = 200
    await sender.transport._send_rtp(packet.serialize())


async def test_late_viewer_plays_when_the_publisher_announces_rtx_and_loses_a_pli(tmp_path: Path) -> None:
    async with whip_plane(tmp_path, video_codecs=["vp8"]) as plane:
        src = await plane.source()
        token = await plane.token(src.path, "publish", audience="trax-talk")
        async with WhipPublisher(plane.url(src.path, "whip"), token, LateStart(1.0)) as pub:
            sender = pub.pc.getTransceivers()[0].sender
            honoured = sender._send_keyframe
            asked: list[float] = []

            def lossy_keyframe_request() -> None:
                asked.append(asyncio.get_running_loop().time())
                if len(asked) > 1:  # the first PLI that reaches the encoder is "lost"
                    honoured()

            sender._send_keyframe = lossy_keyframe_request
            await _probe_on_rtx(pub)
            publisher = plane.rt.hub.publisher(src.path)
            assert publisher is not None
            # no GOP replay: the newcomer needs a fresh keyframe, as with Chrome's minutes-long GOPs
            plane.rt.hub.gop_replay_packets = 0
            await wait_for(lambda: publisher.packets > 30, within=15)
            read = await plane.token(src.path, "read", audience="trax-read")
            async with WhepPlayer(plane.url(src.path, "whep"), read, audio=False) as viewer:
                await wait_for(lambda: viewer.frames["video"] >= 10, within=8)
                ttff = viewer.time_to_first_frame
            assert len(asked) >= 2, (asked, ttff, len(publisher._gop), publisher.packets)  # repeated after the lost one
            assert ttff is not None and ttff <= 3.0, ttff
