"""Minimal WHIP publisher and WHEP player on aiortc, for notebooks, tests and benchmarks.

``async with WhipPublisher(url, token, track) as pub: ...`` publishes;
``async with WhepPlayer(url, token) as player: ...`` plays and counts frames
(decoded, or, with ``decode=False``, reassembled but not decoded, which is how
the benchmark keeps 20 players on two cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from typing import Any

import httpx

from trax.ingest.whip.rtc import tap_receiver

VIDEO_CLOCK = fractions.Fraction(1, 90000)


class PatternTrack:
    """A moving 640x480@30 pattern as an aiortc video track (cheap to make, real to encode)."""

    def __new__(cls, width: int = 640, height: int = 480, fps: int = 30) -> Any:
        import av
        import numpy as np
        from aiortc.mediastreams import VideoStreamTrack

        class _Track(VideoStreamTrack):
            def __init__(self) -> None:
                super().__init__()
                y, x = np.mgrid[0:height, 0:width]
                self._base = ((x + y) % 256).astype(np.uint8)
                self._n = 0
                self._t0: float | None = None

            async def recv(self) -> Any:
                if self._t0 is None:
                    self._t0 = time.monotonic()
                target = self._t0 + self._n / fps
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                luma = np.roll(self._base, self._n * 4, axis=1)
                frame = av.VideoFrame(width, height, "yuv420p")
                frame.planes[0].update(luma.tobytes())
                chroma = np.full((height // 2, width // 2), 128, np.uint8)
                frame.planes[1].update(chroma.tobytes())
                frame.planes[2].update(chroma.tobytes())
                frame.pts = int(self._n * 90000 / fps)
                frame.time_base = VIDEO_CLOCK
                self._n += 1
                return frame

        return _Track()


class _Session:
    def __init__(self, url: str, token: str, *, http: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.token = token
        self.pc: Any = None
        self.location: str | None = None
        self.response: httpx.Response | None = None
        self._http = http
        self._own_http = http is None
        self.posted_at = 0.0
        self.connected = asyncio.Event()

    async def _negotiate(self) -> None:
        from aiortc import RTCSessionDescription

        if self._http is None:
            self._http = httpx.AsyncClient(timeout=30)

        @self.pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
        async def on_state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()

        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.posted_at = time.monotonic()
        resp = await self._http.post(
            self.url,
            content=self.pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp", **self._auth()},
        )
        self.response = resp
        if resp.status_code != 201:
            await self.pc.close()
            raise RuntimeError(f"{self.url}: {resp.status_code} {resp.text}")
        self.location = str(httpx.URL(self.url).join(resp.headers["location"]))
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=resp.text, type="answer"))

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def close(self, *, delete: bool = True) -> None:
        if delete and self.location and self._http is not None:
            with contextlib.suppress(httpx.HTTPError):
                await self._http.delete(self.location, headers=self._auth())
        if self.pc is not None:
            await self.pc.close()
        if self._own_http and self._http is not None:
            await self._http.aclose()


class WhipPublisher(_Session):
    def __init__(self, url: str, token: str, *tracks: Any, video_codec: str | None = None, **kw: Any) -> None:
        super().__init__(url, token, **kw)
        self.tracks = tracks
        self.video_codec = video_codec

    async def start(self) -> WhipPublisher:
        from aiortc import RTCPeerConnection, RTCRtpSender
        from aiortc.rtcconfiguration import RTCConfiguration

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for track in self.tracks:
            t = self.pc.addTransceiver(track, direction="sendonly")
            if track.kind == "video" and self.video_codec:
                caps = RTCRtpSender.getCapabilities("video").codecs
                t.setCodecPreferences([c for c in caps if c.mimeType.lower() == f"video/{self.video_codec.lower()}"])
        await self._negotiate()
        return self

    async def __aenter__(self) -> WhipPublisher:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class WhepPlayer(_Session):
    def __init__(self, url: str, token: str, *, decode: bool = True, audio: bool = True, **kw: Any) -> None:
        super().__init__(url, token, **kw)
        self.decode = decode
        self.audio = audio
        self.frames: dict[str, int] = {"video": 0, "audio": 0}
        self.first_frame_at: float | None = None
        self.keyframes = 0
        self._consumers: list[asyncio.Task[None]] = []

    def _counter(self, kind: str) -> Any:
        return lambda _codec, _frame: self._count(kind)

    def _count(self, kind: str) -> None:
        if self.first_frame_at is None and kind == "video":
            self.first_frame_at = time.monotonic()
        self.frames[kind] += 1

    async def start(self) -> WhepPlayer:
        from aiortc import RTCPeerConnection
        from aiortc.rtcconfiguration import RTCConfiguration

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        kinds = ("video", "audio") if self.audio else ("video",)
        for kind in kinds:
            t = self.pc.addTransceiver(kind, direction="recvonly")
            if not self.decode:
                tap_receiver(t.receiver, self._counter(kind))

        @self.pc.on("track")  # type: ignore[untyped-decorator]
        def on_track(track: Any) -> None:
            if self.decode:
                self._consumers.append(asyncio.ensure_future(self._consume(track)))

        await self._negotiate()
        return self

    async def _consume(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                self._count(track.kind)

    @property
    def time_to_first_frame(self) -> float | None:
        return None if self.first_frame_at is None else self.first_frame_at - self.posted_at

    async def close(self, *, delete: bool = True) -> None:
        for task in self._consumers:
            task.cancel()
        await super().close(delete=delete)

    async def __aenter__(self) -> WhepPlayer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
