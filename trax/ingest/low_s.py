"""ES256 signatures held to "low S", so a token has exactly one valid signature.

An ECDSA signature (r, s) is equally valid as (r, n - s): anyone holding a token can make a second,
different token string with the same claims. Requiring s <= n/2 (the rule Bitcoin's BIP 62 and many
verifiers use) removes that twin; the signer normalises, the verifier refuses the other half. A JWS
ES256 signature is r and s as 32-byte big-endian integers (RFC 7518 section 3.4).
"""

from __future__ import annotations

import base64
import binascii

# the order n of the P-256 group (SEC 2, secp256r1)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = P256_ORDER // 2
_SCALAR = 32


def _signature(token: str) -> tuple[str, bytes] | None:
    head, _, sig = token.rpartition(".")
    try:
        raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    except (binascii.Error, ValueError):
        return None
    return (head, raw) if len(raw) == 2 * _SCALAR else None


def is_low_s(token: str) -> bool:
    """Whether a compact ES256 JWS carries the low-S form of its signature."""
    parsed = _signature(token)
    if parsed is None:
        return False
    s = int.from_bytes(parsed[1][_SCALAR:], "big")
    return 0 < s <= _HALF_ORDER


def to_low_s(token: str) -> str:
    """The same token with its signature in low-S form (unchanged if it already is)."""
    parsed = _signature(token)
    if parsed is None:
        raise ValueError("not a compact ES256 JWS")
    head, raw = parsed
    s = int.from_bytes(raw[_SCALAR:], "big")
    if s <= _HALF_ORDER:
        return token
    low = raw[:_SCALAR] + (P256_ORDER - s).to_bytes(_SCALAR, "big")
    return f"{head}.{base64.urlsafe_b64encode(low).rstrip(b'=').decode()}"
