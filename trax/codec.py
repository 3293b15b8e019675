"""Entity ⇄ bytes for storage backends (JSON via msgspec; dataclasses in, dataclasses out)."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from trax.domain.base import Entity

E = TypeVar("E", bound=Entity)

_encoder = msgspec.json.Encoder()
_decoders: dict[type, msgspec.json.Decoder[object]] = {}


def encode_entity(entity: Entity) -> bytes:
    return _encoder.encode(entity)


def decode_entity(kind: type[E], data: bytes | str) -> E:
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.json.Decoder(kind)
    return dec.decode(data)  # type: ignore[return-value]
