"""Small secrets sealed at rest with a key derived from the server secret.

A copy of the database alone must not yield a usable secret (e.g. the media-token signing key), so such
values are stored encrypted: AES-256-GCM under a key HKDF-SHA256 derives from the server secret and a
purpose string, with a per-value context (e.g. the key's id) bound as associated data, so a sealed value
cannot be moved to another row or read for another purpose. The stored form is ASCII:
``sealed:v1:<base64url(nonce || ciphertext || tag)>``.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:v1:"
_NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value that cannot be opened: another server secret, another context, or damaged."""


class Sealer:
    """Seals and opens values for one purpose under one server secret."""

    def __init__(self, server_key: bytes, purpose: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"trax sealed v1: " + purpose.encode()).derive(
            server_key
        )
        self._aead = AESGCM(key)
        self._purpose = purpose

    def __repr__(self) -> str:
        return f"<Sealer purpose={self._purpose!r}>"

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(PREFIX)

    def seal(self, plaintext: bytes, *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)  # random: each value is sealed once, far below GCM's 2**32 limit
        box = nonce + self._aead.encrypt(nonce, plaintext, context.encode())
        return PREFIX + base64.urlsafe_b64encode(box).decode()

    def open(self, sealed: str, *, context: str) -> bytes:
        if not self.is_sealed(sealed):
            raise SealError("not a sealed value")
        try:
            box = base64.urlsafe_b64decode(sealed[len(PREFIX) :].encode())
        except (binascii.Error, ValueError):
            raise SealError("a sealed value is damaged") from None
        if len(box) <= _NONCE_BYTES:
            raise SealError("a sealed value is damaged")
        try:
            return self._aead.decrypt(box[:_NONCE_BYTES], box[_NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise SealError("a sealed value does not open with this server secret") from None
