"""The ``ingest.rtmp`` / ``ingest.rtmps`` options (validated at start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RtmpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port: int = Field(1935, ge=0, le=65535)
    host: str | None = None
    """Bind address; ``ingest.host`` when unset."""
    certfile: Path | None = None
    keyfile: Path | None = None
    handshake_timeout: float = Field(10.0, gt=0)
    """Seconds a client has to finish the handshake and send ``connect``."""
    idle_timeout: float = Field(30.0, gt=0)
    """Seconds without any message from a client that is not playing."""
    write_timeout: float = Field(10.0, gt=0)
    """Seconds a player may leave our output unread before it is dropped."""
    auth_timeout: float = Field(10.0, gt=0)
    """Seconds from accept to an authorised ``publish``/``play`` (handshake, ``connect`` and the command
    included); a client that has not got there is dropped, however busy it keeps the connection."""
    unauthenticated_max_message_size: int = Field(16 * 1024, ge=1024)
    """Largest message before authorisation (commands are a few hundred bytes; a token-laden ``connect``
    a few KiB). A longer announced message drops the connection; ``max_message_size`` applies after."""
    max_buffered_bytes: int = Field(256 * 1024 * 1024, ge=64 * 1024)
    """Bytes of incomplete messages (and unparsed input) all of this listener's connections may hold
    together; a connection whose read would pass it is dropped."""
    max_connections: int = Field(1000, ge=1)
    max_connections_per_address: int = Field(64, ge=1)
    """Connections from one client address (an IPv4 address or an IPv6 /64) at once."""
    max_unauthenticated_per_address: int = Field(16, ge=1)
    """Connections from one address that have not authorised a publish/play yet; more are refused at accept."""
    max_message_size: int = Field(8 * 1024 * 1024, ge=1024)
    max_chunk_size: int = Field(1024 * 1024, ge=128, le=0x7FFFFFFF)
    max_chunk_streams: int = Field(64, ge=4)
    max_streams: int = Field(8, ge=1)
    """``createStream`` calls allowed per connection."""
    out_chunk_size: int = Field(4096, ge=128, le=65536)
    read_queue: int = Field(1024, ge=16)
    """Packets a player may fall behind before it skips to the next keyframe."""
    adobe_challenge: Literal["on_request", "always"] = "on_request"
    """``always``: a ``connect`` carrying no credential gets the Adobe challenge (so encoders that only
    answer it, e.g. ffmpeg or GStreamer with a plain ``rtmp://key:key@host/...``, can use stream keys);
    tokens then have to come with the connect too (``/inputs?token=<jwt>/<stream>``)."""


class RtmpsOptions(RtmpOptions):
    port: int = Field(1936, ge=0, le=65535)

    @model_validator(mode="after")
    def _needs_tls(self) -> RtmpsOptions:
        if self.certfile is None or self.keyfile is None:
            raise ValueError("rtmps needs certfile and keyfile")
        return self
