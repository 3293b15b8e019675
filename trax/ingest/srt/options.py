"""``ingest.srt`` options (validated when the runtime is built, so a typo fails at start-up)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from trax.ingest.srt import libsrt


class SrtOptions(BaseModel):
    """``ingest.srt`` in the deployment file."""

    model_config = ConfigDict(extra="forbid")

    port: int = Field(8890, ge=0, le=65535)
    """UDP port (0: any free port, read back after bind)."""
    host: str | None = None
    """Bind address; ``ingest.host`` when unset (a name is resolved once, at start)."""
    latency_ms: int = Field(120, ge=20, le=10_000)
    """SRT receive latency (the peer's is the larger of both sides)."""
    passphrase: SecretStr | None = None
    """When set, callers must encrypt with it (10 to 79 characters)."""
    pbkeylen: Literal[16, 24, 32] = 16
    """AES key length in bytes when a passphrase is set."""
    payload_size: int = Field(libsrt.TS_PAYLOAD, ge=188, le=libsrt.LIVE_MAX_PAYLOAD)
    """Largest payload of one message this listener sends (readers)."""
    max_connections: int = Field(200, ge=1, le=10_000)
    """Established connections (publishers and readers); further callers are refused with 1402."""
    max_connections_per_address: int = Field(32, ge=1, le=10_000)
    """Connections from one caller address (an IPv4 address or an IPv6 /64) at once; more are refused with 1402."""
    max_unauthenticated_per_address: int = Field(8, ge=1, le=10_000)
    """Of those, callers whose stream key is still being checked (token callers are checked in the handshake)."""
    auth_timeout_seconds: float = Field(5.0, gt=0, le=60)
    """How long an accepted stream-key caller may wait for its key to be checked before it is closed; also how
    long a handshake libsrt accepted may take to reach ``srt_accept`` before its address slot is freed."""
    optional: bool = False
    """Without libsrt, leave SRT off with a warning instead of refusing to start (``configs/dev.yaml`` sets it, so
    a first run works on a machine without libsrt)."""
    backlog: int = Field(64, ge=1, le=4096)
    peer_idle_timeout_ms: int = Field(5000, ge=1000, le=120_000)
    """A connection whose peer is silent this long is broken."""
    probe_seconds: float = Field(0.5, gt=0, le=10)
    """How much of a new publisher's stream is analysed to find its tracks."""
    read_wait_seconds: float = Field(10.0, gt=0, le=300)
    """How long a ``read`` caller waits for a publisher before it is closed."""
    reader_queue: int = Field(512, ge=16, le=100_000)
    """Packets queued per reader before it skips to the next keyframe."""
    send_stall_seconds: float = Field(5.0, gt=0, le=120)
    """A reader whose peer accepts nothing for this long is closed."""

    @field_validator("passphrase")
    @classmethod
    def _passphrase_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 10 <= len(value.get_secret_value()) <= 79:
            raise ValueError("an SRT passphrase has 10 to 79 characters")
        return value
