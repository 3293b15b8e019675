"""aiortc glue: encoded frames out of a receiver, hub packets into a sender. No decode, no encode.

A WHIP publisher's RTP is depacketized and reassembled by aiortc as usual,
but the *encoded* frame goes to the hub instead of aiortc's decoder thread:
:class:`EncodedTap` stands in for the receiver's decoder queue (a private
attribute, checked at start-up so an aiortc upgrade that moves it fails loudly).

A WHEP viewer's sender is fed by :class:`HubTrack`, whose ``recv`` returns
``av.Packet``s that aiortc only packetizes (``Encoder.pack``), so the media is
encoded once, by the publisher, however many viewers there are.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from trax.ingest.hub import Reader

log = logging.getLogger(__name__)

_DECODER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"


class EncodedTap(queue.Queue[Any]):
    """Receives ``(codec, encoded_frame)`` where aiortc would queue them for decoding.

    Runs on the event loop (aiortc queues from its RTP handler); ``None`` (the
    decoder thread's stop signal) is passed through so the thread still exits.
    """

    def __init__(self, on_frame: Callable[[Any, Any], None]) -> None:
        super().__init__()
        self._on_frame = on_frame

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None, block, timeout)
            return
        codec, frame = item
        try:
            self._on_frame(codec, frame)
        except Exception:
            log.exception("handling an encoded %s frame failed", getattr(codec, "name", "?"))


def tap_receiver(receiver: Any, on_frame: Callable[[Any, Any], None]) -> None:
    """Route a receiver's encoded frames to ``on_frame`` (call before the connection starts)."""
    if not hasattr(receiver, _DECODER_QUEUE_ATTR):
        raise RuntimeError("this aiortc version keeps no decoder queue where trax expects it")
    setattr(receiver, _DECODER_QUEUE_ATTR, EncodedTap(on_frame))


def check_aiortc() -> None:
    """Fail at start-up, not at the first publish, when aiortc's internals moved."""
    from aiortc import RTCRtpReceiver

    if _DECODER_QUEUE_ATTR not in RTCRtpReceiver.__init__.__code__.co_names:
        raise RuntimeError("this aiortc version keeps no decoder queue where trax expects it")


class HubTrack(MediaStreamTrack):
    """One track of a hub path, as pre-encoded ``av.Packet``s for an aiortc sender."""

    def __init__(self, kind: str, reader: Reader, index: int, time_base: Fraction, on_end: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self._reader = reader
        self._index = index
        self._time_base = time_base
        self._on_end = on_end
        self.sent = 0

    async def recv(self) -> Any:
        import av

        if self.readyState != "live":
            raise MediaStreamError
        while True:
            try:
                p = await self._reader.__anext__()
            except StopAsyncIteration:
                self.stop()
                self._on_end()
                raise MediaStreamError from None
            if p.track != self._index:
                continue
            packet = av.Packet(p.data)
            packet.pts = p.pts
            packet.dts = p.dts
            packet.time_base = self._time_base
            self.sent += 1
            return packet

    def stop(self) -> None:
        super().stop()
        self._reader.close()
