"""The hub as the use cases see it (``ServiceDeps.ingest``): live media facts, and ending a publisher.

Read-only over the hub's ``Publisher`` (its tracks and counters); ending goes through
``Publisher.close``, the same path the idle watchdog uses, so each protocol drops its connection
through the close callback it registered.
"""

from __future__ import annotations

import time

from trax.domain.stream import SourceMedia
from trax.ingest.hub import PathHub, Publisher
from trax.ingest.media import Track


class HubView:
    def __init__(self, hub: PathHub) -> None:
        self._hub = hub

    def media(self, path: str) -> SourceMedia | None:
        pub = self._hub.publisher(path)
        if pub is None or pub.closed:
            return None
        return publisher_media(pub)

    async def end_publisher(self, path: str, reason: str | None = None) -> bool:
        pub = self._hub.publisher(path)
        if pub is None or pub.closed:
            return False
        await pub.close(reason)
        return True


def publisher_media(pub: Publisher) -> SourceMedia:
    video = next((t for t in pub.tracks if t.kind == "video"), None)
    audio = next((t for t in pub.tracks if t.kind == "audio"), None)
    elapsed = time.monotonic() - pub.opened_at
    # under a second of data gives a meaningless rate; say nothing rather than something wrong
    bitrate = round(pub.bytes * 8 / elapsed) if elapsed >= 1.0 and pub.bytes else None
    return SourceMedia(
        video_codec=None if video is None else str(video.codec),
        width=None if video is None else video.width,
        height=None if video is None else video.height,
        fps=None if video is None else _fps(pub, video),
        bitrate=bitrate,
        audio_codec=None if audio is None else str(audio.codec),
        sample_rate=None if audio is None else audio.sample_rate,
        channels=None if audio is None else audio.channels,
    )


def _fps(pub: Publisher, track: Track) -> float | None:
    """Frame rate from the cached group of pictures (frames over the time they span).

    The hub keeps no per-track counters and codecs rarely signal a rate, so the GOP the hub
    already holds for late joiners is the cheapest honest measure; ``None`` until it spans time.
    """
    stamps = sorted(p.pts for p in pub.cached_gop() if p.track == track.index)
    if len(stamps) < 2:
        return None
    span = float((stamps[-1] - stamps[0]) * track.time_base)
    if span <= 0:
        return None
    return round((len(stamps) - 1) / span, 2)
