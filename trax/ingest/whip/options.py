"""The ``ingest.whip`` options of a deployment file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trax.settings import HttpDoorSettings

VideoCodec = Literal["h264", "vp8"]
DEFAULT_VIDEO_CODECS: tuple[VideoCodec, ...] = ("h264", "vp8")


class IceServer(BaseModel):
    """A STUN/TURN server handed to aiortc and advertised to clients as a ``Link`` header."""

    model_config = ConfigDict(extra="forbid")
    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: str | None = Field(default=None, repr=False)


class WhipOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: int = Field(default=8889, ge=0, le=65535)
    host: str | None = None
    """Bind address of the HTTP endpoint; ``ingest.host`` if unset."""
    ice_servers: list[IceServer] = Field(default_factory=list)
    """Never a public default: with none, only host candidates are used."""
    host_candidates: list[str] | None = None
    """IP addresses offered as ICE host candidates (e.g. ``[127.0.0.1]`` for loopback-only tests);
    unset uses every non-loopback interface."""
    video_codecs: list[VideoCodec] = Field(default_factory=lambda: list(DEFAULT_VIDEO_CODECS), min_length=1)
    """Video codecs a WHIP publisher may send, preferred first. H.264 also reaches RTMP/SRT readers as is."""
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    """Origins whose pages may publish or play (``*`` for any)."""
    max_sessions: int = Field(default=500, ge=1)
    """WHIP + WHEP sessions open at once in this process."""
    max_sessions_per_credential: int = Field(default=10, ge=1)
    """Sessions one media token (or stream key) may have open at once; more get ``429 rate_limited``."""
    max_sessions_per_account: int = Field(default=200, ge=1)
    """Sessions on the paths of one account at once (a studio's program path counts for its studio)."""
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """A session whose ICE/DTLS has not connected this long after its answer is ended, freeing its slots."""
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    http: HttpDoorSettings = Field(default_factory=HttpDoorSettings)
    """Connection admission and timeouts of the WHIP/WHEP listener (same keys as ``server.http``)."""
    certfile: Path | None = None
    keyfile: Path | None = None
    reader_queue: int = Field(default=300, ge=8)
    """Packets a WHEP viewer may fall behind before it skips to the next keyframe."""
    keyframe_interval_seconds: float = Field(default=0.5, ge=0)
    """Keyframe requests (PLI) to a WHIP publisher are sent at most this often, and repeated this often until a
    keyframe arrives (a PLI may be lost or ignored, and browsers may otherwise send none for minutes)."""
    keyframe_request_attempts: int = Field(default=10, ge=1, le=100)
    """How many times one keyframe request is repeated before giving up (until the next newcomer asks)."""
    aac_for_rtmp: bool = True
    """A WHIP publisher's Opus audio is also published as AAC (encoded once per path, only while the path has
    readers), so RTMP and SRT players get sound; ``false`` leaves them video-only and saves the encode."""
