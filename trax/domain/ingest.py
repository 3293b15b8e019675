"""Ingest-plane records: media-token signing keys and the credentials handed to encoders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from trax.domain.base import Entity

MediaAction = Literal["publish", "read"]
MEDIA_ACTIONS: tuple[str, ...] = ("publish", "read")


@dataclass(kw_only=True, slots=True)
class SigningKey(Entity):
    """An ES256 key for media tokens, owned by ``SYSTEM_ACCOUNT``.

    ``private_pem`` (the name kept for stored rows) holds the PKCS#8 private key
    sealed with a key derived from the server secret (``sealed:v1:...``,
    :mod:`trax.sealing`), so a copy of the database alone cannot mint tokens.
    Rows an earlier version stored as PEM are re-sealed when a process starts.
    """

    KIND = "signing_key"
    PREFIX = "sigkey"

    kid: str
    generation: int
    private_pem: str = field(repr=False)
    retired_at: datetime | None = None

    def unique_keys(self) -> dict[str, str]:
        # by generation too: two processes starting at once cannot both create key 1
        return {"signing_key.kid": self.kid, "signing_key.generation": str(self.generation)}


@dataclass(frozen=True, slots=True)
class IngestCredentials:
    """A minted media token with ready-to-paste URLs, one per enabled protocol."""

    token: str = field(repr=False)
    expires_at: datetime
    path: str
    action: str
    audiences: tuple[str, ...]
    urls: dict[str, str] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, object]:
        return {
            "token": self.token,
            "expiresAt": self.expires_at.isoformat().replace("+00:00", "Z"),
            "path": self.path,
            "action": self.action,
            "audiences": list(self.audiences),
            "urls": dict(self.urls),
        }
