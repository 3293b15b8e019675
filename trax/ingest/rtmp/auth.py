"""Where RTMP clients put credentials, and the Adobe-style ``authmod=adobe`` challenge.

Forms (docs/ingest.md): the stream name's query (``?user=trax&pass=<jwt>`` / ``?token=<jwt>``),
the same query on the app / tcUrl, userinfo in tcUrl (``trax:<jwt>@`` or ``<key>:<key>@``)
for clients that send it there, and the Adobe challenge for stream keys.

The Adobe exchange (as FFmpeg's and librtmp's clients run it) spans three TCP connections:
1. ``connect`` whose app carries ``?authmod=adobe`` without ``user``: answer
   ``code=403 need auth; authmod=adobe`` (the client reconnects adding ``&user=``);
2. ``?authmod=adobe&user=U``: answer ``?reason=needauth&user=U&salt=S&challenge=C&opaque=O``;
3. ``...&challenge=C2&response=R&opaque=O``: accept when
   ``R == b64(md5(b64(md5(U + S + P)) + O + C2))``.
The server keeps only ``b64(md5(U + S + P))`` per key (the salted digest made when the key
is issued), never the key. ``O`` is stateless: a timestamp and nonce signed with the
server secret, so the three connections need no shared state and stale opaques expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

ADOBE_OPAQUE_TTL = 120.0


@dataclass(frozen=True, slots=True)
class Credential:
    """What one connection offered: a token or stream key (``secret``), or a passed Adobe challenge."""

    secret: str | None = field(default=None, repr=False)
    adobe_user: str | None = field(default=None, repr=False)
    form: str = "none"


def split_query(value: str) -> tuple[str, dict[str, str]]:
    """``base?query`` → (base, params). Later ``?`` count as ``&`` (FFmpeg appends a second ``?authmod``)."""
    base, sep, query = value.partition("?")
    if not sep:
        return value, {}
    params: dict[str, str] = {}
    for item in query.replace("?", "&").split("&"):
        k, _, v = item.partition("=")
        # percent-decoding only: clients send base64 (with '+') raw, so '+' is not a space here
        params.setdefault(unquote(k), unquote(v))
    return base, params


def tcurl_userinfo(tc_url: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(tc_url)
    except ValueError:
        return None
    if parts.username is None or parts.password is None:
        return None
    return unquote(parts.username), unquote(parts.password)


def tcurl_query(tc_url: str) -> dict[str, str]:
    return split_query(tc_url)[1]


def from_params(params: dict[str, str], form: str) -> Credential | None:
    if params.get("token"):
        return Credential(secret=params["token"], form=form)
    user, password = params.get("user"), params.get("pass")
    if user is not None and password and (user == "trax" or user == password):
        return Credential(secret=password, form=form)
    return None


def from_userinfo(userinfo: tuple[str, str] | None) -> Credential | None:
    if userinfo is None:
        return None
    user, password = userinfo
    if password and (user == "trax" or user == password):
        return Credential(secret=password, form="userinfo")
    return None


# --- Adobe challenge ----------------------------------------------------------------


def _b64md5(*parts: str) -> str:
    return base64.b64encode(hashlib.md5("".join(parts).encode("utf-8"), usedforsecurity=False).digest()).decode()


def adobe_digest(user: str, salt: str, password: str) -> str:
    """The salted digest a server keeps per stream key: ``b64(md5(user + salt + password))``."""
    return _b64md5(user, salt, password)


def adobe_response(digest: str, opaque: str, challenge2: str) -> str:
    """What the client answers (given the digest): ``b64(md5(digest + opaque + challenge2))``."""
    return _b64md5(digest, opaque, challenge2)


def decoy_salt(user: str, server_key: bytes) -> str:
    """A stable salt for unknown users, so the challenge does not reveal which keys exist."""
    mac = hmac.new(server_key, b"rtmp-adobe-decoy:" + user.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:12]).decode().rstrip("=")


class AdobeChallenges:
    """Issues and checks opaques (stateless, signed, time-limited)."""

    def __init__(self, server_key: bytes, *, ttl: float = ADOBE_OPAQUE_TTL) -> None:
        self._key = server_key
        self._ttl = ttl

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, b"rtmp-adobe:" + body.encode(), hashlib.sha256).hexdigest()[:24]

    def issue(self, user: str, *, now: float | None = None) -> tuple[str, str]:
        """(challenge, opaque) for ``user``."""
        stamp = int(time.time() if now is None else now)
        body = f"{stamp:x}.{os.urandom(6).hex()}"
        opaque = f"{body}.{self._sign(user + '|' + body)}"
        return opaque.rsplit(".", 1)[1][:8], opaque

    def check(self, user: str, opaque: str, *, now: float | None = None) -> bool:
        body, _, mac = opaque.rpartition(".")
        if not body or not hmac.compare_digest(mac, self._sign(user + "|" + body)):
            return False
        try:
            stamp = int(body.split(".", 1)[0], 16)
        except ValueError:
            return False
        age = (time.time() if now is None else now) - stamp
        return -5 <= age <= self._ttl

    @staticmethod
    def need_auth_description() -> str:
        return "[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : "

    @staticmethod
    def challenge_description(user: str, salt: str, challenge: str, opaque: str) -> str:
        return (
            "[ AccessManager.Reject ] : [ authmod=adobe ] : "
            f"?reason=needauth&user={user}&salt={salt}&challenge={challenge}&opaque={opaque}"
        )

    @staticmethod
    def failed_description() -> str:
        return "[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=authfailed&opaque="
