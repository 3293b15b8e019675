"""ES256 signatures are not malleable: tokens are minted low-S and a high-S twin does not verify."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import memory_settings
from trax.domain.errors import Unauthorized
from trax.ingest.tokens import public_jwk
from trax.runtime import Runtime
from trax.services import Principal

pytestmark = pytest.mark.anyio

# the order of the P-256 group
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _s(token: str) -> int:
    return int.from_bytes(_b64d(token.split(".")[2])[32:], "big")


def _flip_s(token: str) -> str:
    """The same signature with s replaced by n - s: valid for plain ECDSA, the malleable twin."""
    head, body, sig = token.split(".")
    raw = _b64d(sig)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    return f"{head}.{body}.{_b64e(r.to_bytes(32, 'big') + (N - s).to_bytes(32, 'big'))}"


async def _source_path(runtime: Runtime, operator: Principal) -> str:
    studio = await runtime.services.studios.create(operator, name="s")
    src = await runtime.services.sources.create(operator, studio.id, name="cam", kind="whip")
    return str(src.path)


async def test_minted_tokens_are_low_s_and_their_high_s_twin_is_refused(runtime: Runtime, operator: Principal) -> None:
    path = await _source_path(runtime, operator)
    pub = runtime.media_tokens._own.keys[runtime.media_tokens.kid].public
    for _ in range(16):  # a plain ECDSA signer gives high S half of the time
        token = (await runtime.media_tokens.mint(path=path, action="publish")).token
        assert _s(token) <= N // 2
        await runtime.media_tokens.verify(token, path=path, action="publish", audiences=["ingest"])
        twin = _flip_s(token)
        # the twin is a mathematically valid ECDSA signature: only the low-S rule refuses it
        jwt.decode(twin, pub, algorithms=["ES256"], audience="trax-ingest", issuer="trax")
        with pytest.raises(Unauthorized, match="signature"):
            await runtime.media_tokens.verify(twin, path=path, action="publish", audiences=["ingest"])


async def test_a_high_s_token_built_by_hand_is_refused(runtime: Runtime, operator: Principal) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

    path = await _source_path(runtime, operator)
    key = runtime.media_tokens._own.keys[runtime.media_tokens.kid].private
    assert key is not None
    now = int(time.time())
    claims = {"iss": "trax", "aud": "trax-ingest", "action": "publish", "path": path, "iat": now, "exp": now + 60}
    header = {"alg": "ES256", "kid": runtime.media_tokens.kid}
    signing_input = f"{_b64e(json.dumps(header).encode())}.{_b64e(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    low, high = min(s, N - s), max(s, N - s)
    # both forms verify with plain ECDSA
    for s_ in (low, high):
        key.public_key().verify(encode_dss_signature(r, s_), signing_input.encode(), ec.ECDSA(hashes.SHA256()))

    def token(s_: int) -> str:
        return f"{signing_input}.{_b64e(r.to_bytes(32, 'big') + s_.to_bytes(32, 'big'))}"

    await runtime.media_tokens.verify(token(low), path=path, action="publish", audiences=["ingest"])
    with pytest.raises(Unauthorized, match="signature"):
        await runtime.media_tokens.verify(token(high), path=path, action="publish", audiences=["ingest"])


async def test_a_trusted_issuer_can_be_held_to_low_s(tmp_path: Path) -> None:
    """Other issuers' libraries may not normalise S: low-S is required of them only when configured."""
    studio_key = ec.generate_private_key(ec.SECP256R1())
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [public_jwk(studio_key.public_key(), "studio-1")]}))
    path = "inputs/whip-00000000-0000-4000-8000-000000000000"

    def settings(require_low_s: bool) -> Any:
        trusted = {"issuer": "studio-api", "jwks_file": str(jwks_file), "require_low_s": require_low_s}
        return memory_settings(tmp_path, ingest={"tokens": {"trusted": [trusted]}})

    now = int(time.time())
    claims = {"iss": "studio-api", "aud": "trax-read", "action": "read", "path": path, "iat": now, "exp": now + 60}
    token = jwt.encode(claims, studio_key, "ES256", headers={"kid": "studio-1"})
    high = token if _s(token) > N // 2 else _flip_s(token)
    low = _flip_s(high)
    async with Runtime(settings(False)) as rt:
        for t in (low, high):
            await rt.media_tokens.verify(t, path=path, action="read", audiences=["read"])
    async with Runtime(settings(True)) as rt:
        await rt.media_tokens.verify(low, path=path, action="read", audiences=["read"])
        with pytest.raises(Unauthorized, match="signature"):
            await rt.media_tokens.verify(high, path=path, action="read", audiences=["read"])
