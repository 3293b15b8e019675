"""Media tokens: minting, the JWKS, stable keys, rotation and every refusal of ingest.md."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import memory_settings
from trax.domain.errors import InvalidRequest, NotFound, Unauthorized
from trax.runtime import Runtime
from trax.services import Principal
from trax.settings import load_settings

pytestmark = pytest.mark.anyio


async def _source(runtime: Runtime, operator: Principal, kind: str = "whip") -> Any:
    studio = await runtime.services.studios.create(operator, name="s")
    return await runtime.services.sources.create(operator, studio.id, name="cam", kind=kind)


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


async def test_mint_then_verify_roundtrip(runtime: Runtime, operator: Principal) -> None:
    src = await _source(runtime, operator)
    creds = await runtime.media_tokens.mint(path=src.path, action="publish")
    claims = await runtime.media_tokens.verify(creds.token, path=src.path, action="publish", audiences=["talk"])
    assert claims["iss"] == "trax" and claims["path"] == src.path and claims["action"] == "publish"
    assert set(claims["aud"]) == {"trax-ingest", "trax-talk"} and claims["can_publish"] is True
    assert claims["jti"] and claims["exp"] > claims["iat"]
    assert jwt.get_unverified_header(creds.token)["kid"] == runtime.media_tokens.kid
    assert creds.token not in repr(creds)


async def test_jwks_holds_the_public_signing_key_only(runtime: Runtime) -> None:
    jwks = runtime.media_tokens.jwks()
    [key] = jwks["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["kid"]
    assert "d" not in key


async def test_token_verifies_with_the_published_jwks_alone(runtime: Runtime, operator: Principal) -> None:
    src = await _source(runtime, operator)
    creds = await runtime.media_tokens.mint(path=src.path, action="read", audience="trax-read")
    jwk = jwt.PyJWKSet.from_dict(runtime.media_tokens.jwks())[jwt.get_unverified_header(creds.token)["kid"]]
    claims = jwt.decode(creds.token, jwk.key, algorithms=["ES256"], audience="trax-read", issuer="trax")
    assert claims["aud"] == "trax-read"
    # a playback token is short-lived by default
    assert claims["exp"] - claims["iat"] == runtime.settings.ingest.tokens.read_ttl_seconds


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        ("expired", "expired"),
        ("other_path", "another stream path"),
        ("other_action", "does not allow"),
        ("wrong_audience", "audience"),
        ("alg_none", "ES256"),
        ("hmac", "ES256"),
        ("unknown_kid", "signing key"),
        ("wrong_issuer", "issuer"),
        ("foreign_key", "signature"),
        ("garbage", "not a media token"),
        ("tampered", "invalid"),
    ],
)
async def test_every_bad_token_is_unauthorized(
    runtime: Runtime, operator: Principal, mutate: str, message: str
) -> None:
    src = await _source(runtime, operator)
    other = await _source(runtime, operator)
    tokens = runtime.media_tokens
    path, action, auds = src.path, "publish", ["talk"]
    kid = tokens.kid
    now = int(time.time())
    good = {"iss": "trax", "aud": "trax-talk", "action": "publish", "path": src.path, "iat": now, "exp": now + 60}
    foreign = ec.generate_private_key(ec.SECP256R1())
    if mutate == "expired":
        # signed by the real key so only expiry is wrong
        token = jwt.encode(
            {**good, "iat": now - 100, "exp": now - 50}, tokens._own.keys[kid].private, "ES256", headers={"kid": kid}
        )
    elif mutate == "other_path":
        token = (await tokens.mint(path=other.path, action="publish")).token
    elif mutate == "other_action":
        token = (await tokens.mint(path=src.path, action="read")).token
        auds = ["ingest", "talk"]  # the audience matches; only the action does not
    elif mutate == "wrong_audience":
        token = (await tokens.mint(path=src.path, action="publish", audience="trax-ingest")).token
    elif mutate == "alg_none":
        token = _b64({"alg": "none", "typ": "JWT", "kid": kid}) + "." + _b64(good) + "."
    elif mutate == "hmac":
        # the classic confusion attack: HMAC keyed with the public JWK's text
        secret = json.dumps(tokens.jwks()["keys"][0]).encode()
        token = _b64({"alg": "HS256", "kid": kid}) + "." + _b64(good)
        sig = hmac.new(secret, token.encode(), hashlib.sha256).digest()
        token += "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    elif mutate == "unknown_kid":
        token = jwt.encode(good, foreign, "ES256", headers={"kid": "nope"})
    elif mutate == "wrong_issuer":
        token = jwt.encode({**good, "iss": "evil"}, tokens._own.keys[kid].private, "ES256", headers={"kid": kid})
    elif mutate == "foreign_key":
        token = jwt.encode(good, foreign, "ES256", headers={"kid": kid})
    elif mutate == "garbage":
        token = "not-a-token"
    elif mutate == "tampered":
        valid = (await tokens.mint(path=src.path, action="publish")).token
        head, _body, sig = valid.split(".")
        token = f"{head}.{_b64({**good, 'path': other.path})}.{sig}"
    with pytest.raises(Unauthorized) as info:
        await tokens.verify(token, path=path, action=action, audiences=auds)
    assert message in info.value.message
    assert token not in info.value.message


async def test_mint_refuses_bad_input(runtime: Runtime, operator: Principal) -> None:
    src = await _source(runtime, operator)
    with pytest.raises(InvalidRequest):
        await runtime.media_tokens.mint(path="inputs/../x", action="publish")
    with pytest.raises(InvalidRequest):
        await runtime.media_tokens.mint(path=src.path, action="delete")
    with pytest.raises(InvalidRequest):
        await runtime.media_tokens.mint(path=src.path, action="read", audience="trax-talk")
    with pytest.raises(InvalidRequest):
        await runtime.media_tokens.mint(path=src.path, action="publish", ttl=0)
    with pytest.raises(NotFound):
        await runtime.media_tokens.mint(path="inputs/whip-00000000-0000-4000-8000-000000000000", action="publish")


async def test_stream_key_is_the_alternative_credential(runtime: Runtime, operator: Principal) -> None:
    src = await _source(runtime, operator, kind="rtmp")
    other = await _source(runtime, operator, kind="rtmp")
    _, key = await runtime.services.sources.rotate_stream_key(operator, src.studio_id, src.id)
    ok = await runtime.media_tokens.authorize(key, path=src.path, action="publish", audiences=["ingest"])
    assert ok["source"] == src.id
    with pytest.raises(Unauthorized):
        await runtime.media_tokens.authorize(key, path=other.path, action="publish", audiences=["ingest"])
    _, _new = await runtime.services.sources.rotate_stream_key(operator, src.studio_id, src.id)
    with pytest.raises(Unauthorized):  # rotated away
        await runtime.media_tokens.authorize(key, path=src.path, action="publish", audiences=["ingest"])


async def test_keys_survive_restart_in_storage_and_rotate(tmp_path: Path) -> None:
    settings = memory_settings(tmp_path, storage={"backend": "sqlite", "options": {"path": str(tmp_path / "t.db")}})
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        first = rt.media_tokens.kid
        acct = await rt.services.accounts.create("a")
        op = Principal.operator(acct.id)
        src = await _source(rt, op)
        old_token = (await rt.media_tokens.mint(path=src.path, action="publish")).token
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        assert rt.media_tokens.kid == first
        await rt.media_tokens.verify(old_token, path=src.path, action="publish", audiences=["ingest"])
        second = await rt.media_tokens.rotate()
        assert second != first
        assert {k["kid"] for k in rt.media_tokens.jwks()["keys"]} == {first, second}
        # old tokens keep working until the old key is retired
        await rt.media_tokens.verify(old_token, path=src.path, action="publish", audiences=["ingest"])
        new_token = (await rt.media_tokens.mint(path=src.path, action="publish")).token
        assert jwt.get_unverified_header(new_token)["kid"] == second
        await rt.media_tokens.retire(first)
        with pytest.raises(Unauthorized):
            await rt.media_tokens.verify(old_token, path=src.path, action="publish", audiences=["ingest"])
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        assert [k["kid"] for k in rt.media_tokens.jwks()["keys"]] == [second]


async def test_key_file_is_created_once_and_kept(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "media.pem"
    settings = memory_settings(tmp_path, ingest={"tokens": {"key_file": str(key_file)}})
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        kid = rt.media_tokens.kid
    assert key_file.stat().st_mode & 0o077 == 0
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        assert rt.media_tokens.kid == kid


async def test_trusted_issuer_with_its_own_names(tmp_path: Path) -> None:
    """TRaX's studio API mints with issuer trax-studio-api and audiences trax-mediamtx*."""
    studio_key = ec.generate_private_key(ec.SECP256R1())
    from trax.ingest.tokens import public_jwk

    jwks_file = tmp_path / "studio-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [public_jwk(studio_key.public_key(), "studio-1")]}))
    settings = memory_settings(
        tmp_path,
        ingest={
            "tokens": {
                "trusted": [
                    {
                        "issuer": "trax-studio-api",
                        "jwks_file": str(jwks_file),
                        "audiences": {
                            "ingest": "trax-mediamtx",
                            "talk": "trax-mediamtx-talk",
                            "read": "trax-mediamtx-read",
                        },
                    }
                ]
            }
        },
    )
    path = "inputs/whip-00000000-0000-4000-8000-000000000000"
    now = int(time.time())
    claims = {"iss": "trax-studio-api", "action": "read", "path": path, "iat": now, "exp": now + 60}
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        good = jwt.encode({**claims, "aud": "trax-mediamtx-read"}, studio_key, "ES256", headers={"kid": "studio-1"})
        assert (await rt.media_tokens.verify(good, path=path, action="read", audiences=["read"]))["iss"]
        # our own audience names mean nothing for that issuer
        bad = jwt.encode({**claims, "aud": "trax-read"}, studio_key, "ES256", headers={"kid": "studio-1"})
        with pytest.raises(Unauthorized):
            await rt.media_tokens.verify(bad, path=path, action="read", audiences=["read"])


async def test_urls_follow_enabled_transports(tmp_path: Path) -> None:
    from trax.ingest.urls import ingest_urls

    settings = load_settings(
        None,
        ingest={
            "public_host": "media.example.test",
            "srt": {"enabled": True, "port": 9000},
            "rtmp": {"enabled": True, "port": 1935, "rtmps": {"port": 1936}},
            "whip": {"enabled": True, "port": 8889},
        },
    )
    urls = ingest_urls(settings.ingest, "inputs/x", "publish", "a.b.c", ("ingest", "talk"))
    assert urls == {
        "srt": "srt://media.example.test:9000?streamid=publish:inputs/x:trax:a.b.c",
        "rtmp": "rtmp://media.example.test:1935/inputs/x?user=trax&pass=a.b.c",
        "rtmps": "rtmps://media.example.test:1936/inputs/x?user=trax&pass=a.b.c",
        "whip": "http://media.example.test:8889/inputs/x/whip?access_token=a.b.c",
    }
    read = ingest_urls(settings.ingest, "inputs/x", "read", "t.t.t", ("read",))
    assert read == {"whep": "http://media.example.test:8889/inputs/x/whep?access_token=t.t.t"}


async def test_two_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    settings = memory_settings(tmp_path, storage={"backend": "sqlite", "options": {"path": str(tmp_path / "t.db")}})
    a, b = Runtime(settings), Runtime(settings)  # type: ignore[arg-type]
    await asyncio.gather(a.start(), b.start())
    try:
        assert a.media_tokens.kid == b.media_tokens.kid
        assert len(a.media_tokens.jwks()["keys"]) == 1
    finally:
        await a.stop()
        await b.stop()


async def test_trusted_issuer_jwks_url_is_fetched_and_refreshed_for_a_new_kid(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from trax.ingest.tokens import public_jwk

    keys = {"k1": ec.generate_private_key(ec.SECP256R1())}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = json.dumps({"keys": [public_jwk(k.public_key(), kid) for kid, k in keys.items()]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    settings = memory_settings(tmp_path, ingest={"tokens": {"trusted": [{"issuer": "studio", "jwks_url": url}]}})
    path = "inputs/srt-00000000-0000-4000-8000-000000000000"
    now = int(time.time())
    claims = {"iss": "studio", "aud": "trax-ingest", "action": "publish", "path": path, "iat": now, "exp": now + 60}
    try:
        async with Runtime(settings) as rt:  # type: ignore[arg-type]
            tokens = rt.media_tokens
            first = jwt.encode(claims, keys["k1"], "ES256", headers={"kid": "k1"})
            with pytest.raises(Unauthorized):  # the synchronous path never fetches
                tokens.verify_cached(first, path=path, action="publish", audiences=["ingest"])
            await tokens.verify(first, path=path, action="publish", audiences=["ingest"])
            assert len(hits) == 1
            await tokens.verify(first, path=path, action="publish", audiences=["ingest"])
            assert len(hits) == 1  # cached
            tokens.verify_cached(first, path=path, action="publish", audiences=["ingest"])
            # the issuer rotates: a token with a new kid makes the JWKS be fetched again
            keys["k2"] = ec.generate_private_key(ec.SECP256R1())
            second = jwt.encode(claims, keys["k2"], "ES256", headers={"kid": "k2"})
            for issuer in tokens._trusted.values():
                issuer.fetched_at -= 60  # past the anti-hammering pause, without sleeping
            await tokens.verify(second, path=path, action="publish", audiences=["ingest"])
            assert len(hits) == 2
            # a token from an issuer nobody trusts is refused without any fetch
            stranger = jwt.encode({**claims, "iss": "other"}, keys["k2"], "ES256", headers={"kid": "k2"})
            with pytest.raises(Unauthorized):
                await tokens.verify(stranger, path=path, action="publish", audiences=["ingest"])
            assert len(hits) == 2
    finally:
        server.shutdown()


async def test_a_default_token_fits_an_srt_streamid(tmp_path: Path) -> None:
    """ingest.md: a streamid is at most 512 bytes, and it carries the action, the path and the token."""
    settings = memory_settings(tmp_path, ingest={"srt": {"enabled": True, "port": 8890}})
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        acct = await rt.services.accounts.create("a")
        src = await _source(rt, Principal.operator(acct.id), kind="srt")
        for action in ("publish", "read"):
            creds = await rt.media_tokens.mint(path=src.path, action=action)  # every audience of the action
            streamid = creds.urls["srt"].split("?streamid=", 1)[1]
            assert len(streamid.encode()) <= 512, len(streamid)
            assert streamid == f"{action}:{src.path}:trax:{creds.token}"
