"""WHIP publisher takeover: a second WHIP publisher with a valid token replaces the first; an ffmpeg reader goes on."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.ingest.srt_support import decoded_file_frames, read_cmd, require_srt, run
from tests.ingest.whip_support import wait_for, whip_plane
from trax.ingest.hub import TAKEOVER_REASON
from trax.ingest.whip.client import PatternTrack, WhipPublisher
from trax.ports import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SMALL = {"width": 320, "height": 240, "fps": 30}


async def test_a_second_whip_publisher_takes_over(tmp_path: Path) -> None:
    pytest.importorskip("av")
    require_srt()
    srt_port = free_port(socket.SOCK_DGRAM)
    out = tmp_path / "played.ts"
    async with whip_plane(tmp_path, ingest={"srt": {"enabled": True, "port": srt_port}}) as plane:
        src = await plane.source()
        hub = plane.rt.hub
        token = await plane.token(src.path, "publish")
        read = await plane.token(src.path, "read", audience="trax-ingest")
        first = WhipPublisher(plane.url(src.path, "whip"), token, PatternTrack(**SMALL), video_codec="h264")
        await first.start()
        try:
            await wait_for(lambda: (p := hub.publisher(src.path)) is not None and p.keyframes > 0)
            old = hub.publisher(src.path)
            assert old is not None
            reasons: list[str | None] = []
            old.on_close(reasons.append)
            url = f"srt://127.0.0.1:{srt_port}?streamid=read:{src.path}:trax:{read}"
            player = asyncio.create_task(run([*read_cmd(url, out)[:-1], "-t", "6", str(out)], limit=30))
            await wait_for(lambda: old.readers == 1)
            await asyncio.sleep(1)
            async with WhipPublisher(
                plane.url(src.path, "whip"), token, PatternTrack(**SMALL), video_codec="h264"
            ) as second:
                assert second.response is not None and second.response.status_code == 201
                await wait_for(lambda: reasons == [TAKEOVER_REASON], within=5)
                new = hub.publisher(src.path)
                assert new is not None and new is not old and new.readers == 1
                await wait_for(lambda: new.keyframes > 0 and new.packets > 90)  # ~3 s from the second
                rc, err = await asyncio.wait_for(player, 20)
                assert rc == 0, err
        finally:
            await first.close()
        # the player was attached ~1 s to the first and the rest of its 6 s to the second
        assert decoded_file_frames(out).get("video", 0) >= 4 * 30 * 0.7
