"""The media-token signing key at rest: sealed with the server secret, so a database copy cannot mint tokens."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import memory_settings
from trax.domain.base import SYSTEM_ACCOUNT, utcnow
from trax.domain.ingest import SigningKey
from trax.ingest.tokens import key_id
from trax.interfaces import Insert
from trax.runtime import Runtime
from trax.services import Principal
from trax.settings import ConfigError

pytestmark = pytest.mark.anyio

SECRET = "test-secret-" + "x" * 40


def _settings(tmp_path: Path, secret: str = SECRET) -> Any:
    return memory_settings(
        tmp_path,
        storage={"backend": "sqlite", "options": {"path": str(tmp_path / "t.db")}},
        security={"secret_key": secret},
    )


async def _records(settings: Any) -> list[SigningKey]:
    rt = Runtime(settings)
    await rt.storage.open()
    try:
        return await rt.storage.list(SigningKey, SYSTEM_ACCOUNT)
    finally:
        await rt.storage.close()


def _loads_as_a_key(value: str, passwords: list[bytes | None]) -> bool:
    for password in passwords:
        for load in (serialization.load_pem_private_key, serialization.load_der_private_key):
            try:
                load(value.encode(), password=password)
            except (ValueError, TypeError):
                continue
            return True
    return False


async def test_the_stored_key_is_no_pem_and_cannot_be_loaded_without_the_secret(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with Runtime(settings) as rt:
        kid = rt.media_tokens.kid
    [rec] = await _records(settings)
    assert rec.kid == kid
    assert "-----BEGIN" not in rec.private_pem and "PRIVATE KEY" not in rec.private_pem
    # not loadable as is, nor with the password derived the way earlier versions did
    legacy_password = hashlib.sha256(b"trax-signing-key:" + SECRET.encode()).digest()
    assert not _loads_as_a_key(rec.private_pem, [None, legacy_password, SECRET.encode()])


async def test_a_runtime_with_another_server_secret_refuses_clearly(tmp_path: Path) -> None:
    async with Runtime(_settings(tmp_path)):
        pass
    with pytest.raises(ConfigError, match="secret_key"):
        async with Runtime(_settings(tmp_path, secret="another-secret-" + "y" * 40)):
            pass


def _record(key: ec.EllipticCurvePrivateKey, private_pem: str) -> SigningKey:
    now = utcnow()
    return SigningKey(
        id=f"{SigningKey.PREFIX}_{1:06d}_{uuid.uuid4().hex[:8]}",
        account_id=SYSTEM_ACCOUNT,
        created_at=now,
        updated_at=now,
        kid=key_id(key.public_key()),
        generation=1,
        private_pem=private_pem,
    )


@pytest.mark.parametrize("legacy", ["plain", "pkcs8-encrypted"])
async def test_a_legacy_pem_row_is_read_and_rewritten_sealed(tmp_path: Path, legacy: str) -> None:
    settings = _settings(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if legacy == "pkcs8-encrypted":
        encryption = serialization.BestAvailableEncryption(
            hashlib.sha256(b"trax-signing-key:" + SECRET.encode()).digest()
        )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()
    rt = Runtime(settings)
    await rt.storage.open()
    await rt.storage.apply([Insert(_record(key, pem))])
    await rt.storage.close()

    async with Runtime(settings) as rt:
        # the same key signs (tokens already out there keep verifying) and is published
        assert rt.media_tokens.kid == key_id(key.public_key())
        assert [k["kid"] for k in rt.media_tokens.jwks()["keys"]] == [rt.media_tokens.kid]
        acct = await rt.services.accounts.create("a")
        studio = await rt.services.studios.create(Principal.operator(acct.id), name="s")
        src = await rt.services.sources.create(Principal.operator(acct.id), studio.id, name="c", kind="whip")
        token = (await rt.media_tokens.mint(path=src.path, action="publish")).token
        jwt.decode(token, key.public_key(), algorithms=["ES256"], audience="trax-ingest", issuer="trax")
    [rec] = await _records(settings)
    assert "-----BEGIN" not in rec.private_pem
    assert not _loads_as_a_key(rec.private_pem, [None, SECRET.encode()])
    async with Runtime(settings) as rt:  # and the sealed row reads back
        assert rt.media_tokens.kid == key_id(key.public_key())


async def test_two_processes_migrating_one_legacy_row_at_once_agree(tmp_path: Path) -> None:
    import asyncio

    settings = _settings(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    rt = Runtime(settings)
    await rt.storage.open()
    await rt.storage.apply([Insert(_record(key, pem))])
    await rt.storage.close()
    a, b = Runtime(settings), Runtime(settings)
    await asyncio.gather(a.start(), b.start())
    try:
        assert a.media_tokens.kid == b.media_tokens.kid == key_id(key.public_key())
    finally:
        await a.stop()
        await b.stop()
    [rec] = await _records(settings)
    assert rec.private_pem.startswith("sealed:v1:")


async def test_a_sealed_key_moved_to_another_row_does_not_open(tmp_path: Path) -> None:
    """The kid is bound to the sealed value: a database writer cannot pass one row's key off as another's."""
    from dataclasses import replace

    from trax.interfaces import Update

    settings = _settings(tmp_path)
    async with Runtime(settings) as rt:
        await rt.media_tokens.rotate()
    first, second = sorted(await _records(settings), key=lambda r: r.generation)
    rt = Runtime(settings)
    await rt.storage.open()
    await rt.storage.apply([Update(replace(second, private_pem=first.private_pem))])
    await rt.storage.close()
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        async with Runtime(settings):
            pass
