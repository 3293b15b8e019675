from __future__ import annotations

import base64
import hashlib

from trax.ingest.rtmp.auth import (
    AdobeChallenges,
    adobe_digest,
    adobe_response,
    decoy_salt,
    from_params,
    from_userinfo,
    split_query,
    tcurl_userinfo,
)
from trax.services.sources import stream_key_challenge_digest

KEY = b"k" * 32


def test_split_query_tolerates_ffmpegs_second_question_mark() -> None:
    base, params = split_query("inputs?authmod=adobe?authmod=adobe&user=live_x&challenge=ab&response=r%2B%3D")
    assert base == "inputs"
    assert params == {"authmod": "adobe", "user": "live_x", "challenge": "ab", "response": "r+="}
    assert split_query("rtmp-1") == ("rtmp-1", {})
    # FFmpeg sends the base64 response raw: '+' must survive
    assert split_query("inputs?response=ab+c/d==")[1] == {"response": "ab+c/d=="}


def test_credential_forms() -> None:
    assert from_params({"user": "trax", "pass": "jwt"}, "query").secret == "jwt"  # type: ignore[union-attr]
    assert from_params({"token": "jwt"}, "query").secret == "jwt"  # type: ignore[union-attr]
    assert from_params({"user": "key1", "pass": "key1"}, "query").secret == "key1"  # type: ignore[union-attr]
    assert from_params({"user": "bob", "pass": "jwt"}, "query") is None
    assert from_params({}, "query") is None
    assert tcurl_userinfo("rtmp://trax:a.b.c@127.0.0.1:1935/inputs") == ("trax", "a.b.c")
    assert tcurl_userinfo("rtmp://127.0.0.1/inputs") is None
    assert from_userinfo(("trax", "a.b.c")).form == "userinfo"  # type: ignore[union-attr]


def test_credential_repr_hides_the_secret() -> None:
    assert "s3cret" not in repr(from_params({"token": "s3cret"}, "query"))


def _ffmpeg_client(user: str, password: str, salt: str, opaque: str, challenge2: str) -> str:
    """The client side as FFmpeg's rtmpproto computes it, written out independently."""
    h1 = base64.b64encode(hashlib.md5((user + salt + password).encode()).digest()).decode()
    return base64.b64encode(hashlib.md5((h1 + opaque + challenge2).encode()).digest()).decode()


def test_adobe_exchange_verifies_with_the_stored_digest_only() -> None:
    key, salt = "live_abc", "s4lt"
    stored = stream_key_challenge_digest(key, salt)
    assert stored == adobe_digest(key, salt, key)
    challenges = AdobeChallenges(KEY)
    _, opaque = challenges.issue(key)
    response = _ffmpeg_client(key, key, salt, opaque, "0a1b2c3d")
    assert challenges.check(key, opaque)
    assert adobe_response(stored, opaque, "0a1b2c3d") == response
    assert adobe_response(stored, opaque, "ffffffff") != response
    assert adobe_response(adobe_digest(key, salt, "wrong"), opaque, "0a1b2c3d") != response


def test_opaque_is_signed_per_user_and_expires() -> None:
    challenges = AdobeChallenges(KEY, ttl=60)
    _, opaque = challenges.issue("u1", now=1_000_000)
    assert challenges.check("u1", opaque, now=1_000_030)
    assert not challenges.check("u1", opaque, now=1_000_100)
    assert not challenges.check("u2", opaque, now=1_000_030)
    assert not challenges.check("u1", opaque[:-1] + ("0" if opaque[-1] != "0" else "1"), now=1_000_030)
    assert not AdobeChallenges(b"other" * 8).check("u1", opaque, now=1_000_030)


def test_decoy_salt_is_stable_and_unlinkable() -> None:
    assert decoy_salt("nobody", KEY) == decoy_salt("nobody", KEY)
    assert decoy_salt("nobody", KEY) != decoy_salt("somebody", KEY)


def test_challenge_descriptions_parse_the_way_ffmpeg_reads_them() -> None:
    assert "code=403 need auth" in AdobeChallenges.need_auth_description()
    desc = AdobeChallenges.challenge_description("u", "s", "c", "o")
    assert "authmod=adobe" in desc
    params = dict(kv.split("=", 1) for kv in desc.split("?reason=needauth&", 1)[1].split("&"))
    assert params == {"user": "u", "salt": "s", "challenge": "c", "opaque": "o"}
    assert "?reason=authfailed" in AdobeChallenges.failed_description()
