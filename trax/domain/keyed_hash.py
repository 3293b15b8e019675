"""Keyed BLAKE2b: the one MAC behind stored credential hashes, upload tokens and list cursors.

Why BLAKE2b and not HMAC-SHA-256: BLAKE2 has a keyed mode that is a MAC by
design (RFC 7693 §2.9), and CPython implements it itself, whereas ``hmac``
goes through OpenSSL 3, whose per-call algorithm fetch touches enough memory
to cost a busy server several times its microbenchmark figure on every
authenticated request (benchmarks/README.md, "Where the time went"). ``person``
separates uses, so a value made for one purpose never verifies for another.
"""

from __future__ import annotations

import hashlib

MAX_KEY_BYTES = 64
"""BLAKE2b's key limit; a longer server key is first condensed to this size."""


def fit_key(key: bytes) -> bytes:
    """``key`` itself when BLAKE2b takes it, else a 64-byte digest of it (same key, same result)."""
    if len(key) <= MAX_KEY_BYTES:
        return key
    return hashlib.blake2b(key, digest_size=MAX_KEY_BYTES, person=b"trax-long-key").digest()


def keyed_hash(key: bytes, data: bytes, *, person: bytes, size: int = 32) -> bytes:
    """BLAKE2b of ``data`` under ``key`` for the purpose named by ``person`` (at most 16 bytes)."""
    return hashlib.blake2b(data, key=fit_key(key), person=person, digest_size=size).digest()
