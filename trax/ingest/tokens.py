"""Media session tokens: ES256 JWTs bound to one action on one stream path (docs/ingest.md).

Signing keys are EC P-256, named by their RFC 7638 thumbprint (the ``kid``).
They live in storage as ``SigningKey`` records of the system account (the
private key sealed with the server secret, :mod:`trax.sealing`; rows written
by earlier versions as PEM are re-sealed on first start) or in an
operator-managed PEM file; in
both cases the newest key signs and every unretired key stays in the JWKS, so
rotation is "add a key, wait out the longest TTL, retire the old one".

Verification is deliberately strict and says little: the algorithm must be
ES256 (so ``none`` and HMAC are refused before any key is looked up), the
signature must be low-S (our own tokens always; a trusted issuer's when its
``require_low_s`` is set), the
``kid`` must name a known key of the token's issuer, ``aud`` must be one the
caller accepts, and ``action``/``path`` must match exactly. Every failure is
``Unauthorized``; the token itself never appears in a message or a log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from trax.domain.base import SYSTEM_ACCOUNT, utcnow
from trax.domain.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from trax.domain.ingest import MEDIA_ACTIONS, IngestCredentials, SigningKey
from trax.domain.paths import is_source_path, is_valid_path
from trax.ingest.low_s import is_low_s, to_low_s
from trax.interfaces import Insert, Storage, Update
from trax.sealing import Sealer, SealError
from trax.settings import ConfigError, MediaTokenSettings, TokenAudiences, TrustedIssuer

log = logging.getLogger(__name__)

ALGORITHM = "ES256"
ROLES: tuple[str, ...] = ("ingest", "talk", "read")
DEFAULT_AUDIENCE_ROLES: dict[str, str] = {"trax-ingest": "ingest", "trax-talk": "talk", "trax-read": "read"}
# Which audiences a token minted without an explicit one covers, so every URL it comes with works.
ROLES_FOR_ACTION: dict[str, tuple[str, ...]] = {"publish": ("ingest", "talk"), "read": ("ingest", "read")}
MAX_TOKEN_BYTES = 4096

UrlBuilder = Callable[[str, str, str, Collection[str]], dict[str, str]]
"""``(path, action, token, roles) -> {protocol: url}``, supplied by whoever knows the listeners."""

PathCheck = Callable[[str], Any]
StreamKeyLookup = Callable[[str], Awaitable[Any]]
"""``key -> Source | None`` (``SourceService.by_stream_key``)."""


KID_LENGTH = 16
"""Our kids are the first 16 characters (96 bits) of the RFC 7638 thumbprint: a token must fit an SRT
streamid (512 bytes with the path), so every byte of header and claims counts."""


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    return thumbprint(public_key)[:KID_LENGTH]


def thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    jwk = json.loads(ECAlgorithm.to_jwk(public_key))
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def public_jwk(public_key: ec.EllipticCurvePublicKey, kid: str) -> dict[str, str]:
    jwk: dict[str, str] = json.loads(ECAlgorithm.to_jwk(public_key))
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}


@dataclass(slots=True)
class _Key:
    kid: str
    private: ec.EllipticCurvePrivateKey | None = field(repr=False)
    public: ec.EllipticCurvePublicKey = field(repr=False)


@dataclass(slots=True)
class _Issuer:
    """The keys and audience names of one issuer this deployment trusts (itself included)."""

    name: str
    audiences: TokenAudiences
    keys: dict[str, _Key] = field(default_factory=dict)
    source: TrustedIssuer | None = None
    fetched_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def audience_names(self, roles: Collection[str]) -> list[str]:
        return [getattr(self.audiences, r) for r in roles]


class MediaTokens:
    """Mint, verify and publish (JWKS) media tokens for one deployment; ``runtime.media_tokens``."""

    def __init__(
        self,
        settings: MediaTokenSettings,
        storage: Storage,
        server_key: bytes,
        *,
        urls: UrlBuilder | None = None,
        path_exists: PathCheck | None = None,
        stream_keys: StreamKeyLookup | None = None,
    ) -> None:
        self.settings = settings
        self._storage = storage
        self._sealer = Sealer(server_key, "media-token signing key")
        # how versions before sealing encrypted the stored PEM; read once to migrate such rows
        self._legacy_password = hashlib.sha256(b"trax-signing-key:" + server_key).digest()
        self._urls = urls
        self._path_exists = path_exists
        self._stream_keys = stream_keys
        self._own = _Issuer(settings.issuer, settings.audiences)
        self._trusted: dict[str, _Issuer] = {
            t.issuer: _Issuer(t.issuer, t.audiences, source=t) for t in settings.trusted
        }
        if settings.issuer in self._trusted:
            raise ConfigError(f"ingest.tokens.trusted: {settings.issuer!r} is this deployment's own issuer")
        self._signing: _Key | None = None
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"<MediaTokens issuer={self.settings.issuer!r} keys={sorted(self._own.keys)}>"

    # --- lifecycle ----------------------------------------------------------

    async def open(self) -> None:
        """Load (or create on first start) the signing keys; read trusted JWKS files."""
        if self.settings.key_file is not None:
            self._load_key_file(self.settings.key_file)
        else:
            await self._load_stored_keys()
        for issuer in self._trusted.values():
            if issuer.source is not None and issuer.source.jwks_file is not None:
                try:
                    data = json.loads(issuer.source.jwks_file.read_text())
                except (OSError, ValueError) as exc:
                    raise ConfigError(f"ingest.tokens.trusted: cannot read {issuer.source.jwks_file}: {exc}") from None
                self._set_jwks(issuer, data)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def kid(self) -> str:
        """The key that signs new tokens."""
        return self._require_signing().kid

    def _require_signing(self) -> _Key:
        if self._signing is None:
            raise RuntimeError("MediaTokens.open() has not run (start the runtime first)")
        return self._signing

    # --- keys in a file -------------------------------------------------------

    def _load_key_file(self, path: Path) -> None:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = _new_private_key().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first: use theirs
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(pem)
                    fh.flush()
                    os.fsync(fh.fileno())
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"ingest.tokens.key_file: cannot read {path}: {exc.strerror}") from None
        blocks = _pem_blocks(text)
        if not blocks:
            raise ConfigError(f"ingest.tokens.key_file: {path} holds no PEM private key")
        self._own.keys.clear()
        for block in blocks:
            try:
                key = serialization.load_pem_private_key(block.encode(), password=None)
            except (ValueError, TypeError):
                raise ConfigError(f"ingest.tokens.key_file: {path} holds a key that cannot be read") from None
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
                raise ConfigError(f"ingest.tokens.key_file: {path}: only EC P-256 keys sign ES256 tokens")
            k = _Key(key_id(key.public_key()), key, key.public_key())
            self._own.keys[k.kid] = k
            self._signing = k  # the last key in the file signs

    # --- keys in storage --------------------------------------------------------

    async def _stored(self) -> list[SigningKey]:
        out: list[SigningKey] = []
        after: str | None = None
        while True:
            page = await self._storage.list(SigningKey, SYSTEM_ACCOUNT, after=after, limit=200)
            out += page
            if len(page) < 200:
                return sorted(out, key=lambda k: k.generation)
            after = page[-1].id

    async def _load_stored_keys(self) -> None:
        records = await self._stored()
        if not records:
            await self._insert_key(1)
            records = await self._stored()
        self._own.keys.clear()
        self._signing = None
        for rec in records:
            if not self._sealer.is_sealed(rec.private_pem):
                await self._seal_legacy(rec)  # retired ones too: a database copy must not hold a usable key
            if rec.retired_at is not None:
                continue
            key = self._open(rec)
            k = _Key(rec.kid, key, key.public_key())
            self._own.keys[k.kid] = k
            self._signing = k
        if self._signing is None:  # every key retired: start a new generation
            await self._insert_key(records[-1].generation + 1)
            await self._load_stored_keys()

    def _open(self, rec: SigningKey) -> ec.EllipticCurvePrivateKey:
        """The private key of a stored record (sealed, or a PEM an earlier version wrote)."""
        try:
            if self._sealer.is_sealed(rec.private_pem):
                key = serialization.load_der_private_key(self._sealer.open(rec.private_pem, context=rec.kid), None)
            else:
                encrypted = "ENCRYPTED" in rec.private_pem.split("\n", 1)[0]
                key = serialization.load_pem_private_key(
                    rec.private_pem.encode(), password=self._legacy_password if encrypted else None
                )
        except (SealError, ValueError, TypeError):
            raise ConfigError(
                f"ingest.tokens: the stored signing key {rec.kid} cannot be decrypted with this server secret; "
                "security.secret_key (or the file at security.secret_key_file) is not the one it was stored "
                "with, or the stored row was altered: restore that secret (every process sharing the storage "
                "needs the same one)"
            ) from None
        if (
            not isinstance(key, ec.EllipticCurvePrivateKey)
            or not isinstance(key.curve, ec.SECP256R1)
            or key_id(key.public_key()) != rec.kid
        ):
            raise ConfigError(f"ingest.tokens: the stored signing key {rec.kid} is not the EC P-256 key it names")
        return key

    async def _seal_legacy(self, rec: SigningKey) -> None:
        """Re-write a PEM row of an earlier version sealed. Every process sharing the storage derives the
        same sealing key, so when several migrate at once the first write wins and the rest change nothing."""
        key = self._open(rec)
        sealed = replace(
            rec,
            private_pem=self._sealer.seal(_der(key), context=rec.kid),
            updated_at=max(utcnow(), rec.updated_at + timedelta(milliseconds=1)),
        )
        with contextlib.suppress(Conflict, NotFound):
            await self._storage.apply([Update(sealed, expect_updated_at=rec.updated_at)])
        log.info("media-token signing key %s: re-stored sealed with the server secret", rec.kid)

    async def _insert_key(self, generation: int) -> None:
        key = _new_private_key()
        kid = key_id(key.public_key())
        now = utcnow()
        rec = SigningKey(
            id=f"{SigningKey.PREFIX}_{generation:06d}_{uuid.uuid4().hex[:8]}",
            account_id=SYSTEM_ACCOUNT,
            created_at=now,
            updated_at=now,
            kid=kid,
            generation=generation,
            private_pem=self._sealer.seal(_der(key), context=kid),
        )
        with contextlib.suppress(Conflict):  # another process made this generation first: theirs wins
            await self._storage.apply([Insert(rec)])

    async def rotate(self) -> str:
        """Add a new signing key (it signs from now on; older keys stay in the JWKS). Returns its kid."""
        if self.settings.key_file is not None:
            raise InvalidRequest("Keys come from ingest.tokens.key_file: append a key to that file to rotate.")
        records = await self._stored()
        await self._insert_key((records[-1].generation if records else 0) + 1)
        await self._load_stored_keys()
        return self.kid

    async def retire(self, kid: str) -> None:
        """Drop a key from the JWKS (tokens it signed stop verifying). The signing key cannot be retired."""
        if self.settings.key_file is not None:
            raise InvalidRequest("Keys come from ingest.tokens.key_file: remove the key from that file.")
        if kid == self.kid:
            raise InvalidRequest("The current signing key cannot be retired; rotate first.", param="kid")
        for rec in await self._stored():
            if rec.kid == kid and rec.retired_at is None:
                now = utcnow()
                await self._storage.apply([Update(_retired(rec, now))])
                await self._load_stored_keys()
                return
        raise NotFound("No such active signing key.")

    def keys(self) -> list[dict[str, Any]]:
        """The active keys, oldest first, with which one signs (no private material)."""
        return [{"kid": k.kid, "signing": k is self._signing} for k in self._own.keys.values()]

    # --- JWKS -----------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """The public JWKS served at ``/.well-known/jwks.json``."""
        return {"keys": [public_jwk(k.public, k.kid) for k in self._own.keys.values()]}

    # --- minting ----------------------------------------------------------------

    def audience_roles(self, audience: str | None, action: str) -> tuple[str, ...]:
        if audience is None:
            return ROLES_FOR_ACTION[action]
        role = _role_of(audience, self._own.audiences)
        if role is None:
            names = ", ".join(getattr(self._own.audiences, r) for r in ROLES)
            raise InvalidRequest(f"audience must be one of {names}.", param="audience")
        if role == "talk" and action != "publish":
            raise InvalidRequest("The WebRTC publish audience only takes action 'publish'.", param="audience")
        if role == "read" and action != "read":
            raise InvalidRequest("The WebRTC playback audience only takes action 'read'.", param="audience")
        return (role,)

    async def mint(
        self,
        *,
        path: str,
        action: str,
        audience: str | None = None,
        ttl: int | None = None,
        subject: str | None = None,
    ) -> IngestCredentials:
        """A token for ``action`` on ``path`` with ready-to-paste URLs.

        Without ``audience`` the token covers every protocol for the action
        (publish: ingest + talk; read: ingest + read) and lists all their URLs.
        """
        if action not in MEDIA_ACTIONS:
            raise InvalidRequest("action must be 'publish' or 'read'.", param="action")
        if not isinstance(path, str) or not is_valid_path(path):
            raise InvalidRequest("path is not a stream path (inputs/<kind>-<uuid>).", param="path")
        if action == "publish" and not is_source_path(path):
            # a program path is written by its studio's pipeline alone; anyone else may only read it
            raise InvalidRequest("A program path can only be read; its studio's pipeline publishes it.", param="action")
        if self._path_exists is not None and is_source_path(path):
            found = self._path_exists(path)
            if asyncio.iscoroutine(found):
                found = await found
            if not found:
                raise NotFound("No source has this path.")
        roles = self.audience_roles(audience, action)
        if ttl is None:
            ttl = self.settings.read_ttl_seconds if roles == ("read",) else self.settings.default_ttl_seconds
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= self.settings.max_ttl_seconds:
            raise InvalidRequest(f"ttl must be 1..{self.settings.max_ttl_seconds} seconds.", param="ttl")
        key = self._require_signing()
        assert key.private is not None
        now = datetime.now(UTC).replace(microsecond=0)
        expires = now + timedelta(seconds=ttl)
        auds = self._own.audience_names(roles)
        claims: dict[str, Any] = {
            "iss": self._own.name,
            "aud": auds[0] if len(auds) == 1 else auds,
            "action": action,
            "path": path,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": secrets.token_urlsafe(12),
        }
        if "talk" in roles:
            claims["can_publish"] = True
        if subject:
            claims["sub"] = subject
        # no "typ" header: it says nothing a verifier uses and costs bytes an SRT streamid does not have
        token = jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": None})
        token = to_low_s(token)  # our verifiers refuse the high-S twin (trax.ingest.low_s)
        urls = self._urls(path, action, token, roles) if self._urls is not None else {}
        return IngestCredentials(
            token=token, expires_at=expires, path=path, action=action, audiences=tuple(auds), urls=urls
        )

    # --- verification -------------------------------------------------------------

    async def verify(self, token: str, *, path: str, action: str, audiences: Collection[str]) -> dict[str, Any]:
        """The token's claims when it is valid for ``action`` on ``path`` and one of ``audiences``.

        ``audiences`` are roles (``ingest``/``talk``/``read``) or their default
        names (``trax-ingest``...); each issuer's own names are applied. Raises
        ``Unauthorized`` on any failure; fetches a trusted issuer's JWKS when
        its key is not known yet.
        """
        issuer, header = self._peek(token)
        if issuer.source is not None and issuer.source.jwks_url and self._stale(issuer, header.get("kid")):
            await self._refresh(issuer)
        return self.verify_cached(token, path=path, action=action, audiences=audiences)

    async def authorize(self, credential: str, *, path: str, action: str, audiences: Collection[str]) -> dict[str, Any]:
        """Either credential form of docs/ingest.md: a media token, or the source's static stream key.

        Returns the token's claims, or ``{"path", "action", "source"}`` for a stream key.
        """
        if not isinstance(credential, str) or not credential:
            raise Unauthorized("A media token or stream key is required.")
        if is_jwt(credential):
            return await self.verify(credential, path=path, action=action, audiences=audiences)
        if self._stream_keys is None or len(credential) > 256:
            raise Unauthorized("The credential is not valid.")
        source = await self._stream_keys(credential)
        if source is None or getattr(source, "path", None) != path:
            raise Unauthorized("The stream key is not valid for this path.")
        return {"path": path, "action": action, "source": source.id}

    def verify_cached(self, token: str, *, path: str, action: str, audiences: Collection[str]) -> dict[str, Any]:
        """:meth:`verify` without network I/O (for listeners that must answer synchronously, e.g. SRT)."""
        issuer, header = self._peek(token)
        kid = header.get("kid")
        key = issuer.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthorized("The token's signing key is not known.")
        roles = [r for r in (_role_of(a, None) for a in audiences) if r is not None]
        if not roles:
            raise Unauthorized("This endpoint accepts no media token audience.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=issuer.audience_names(roles),
                issuer=issuer.name,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired.") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("The token is not meant for this endpoint (audience).") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("The token's issuer is not trusted.") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("The token's signature is invalid.") from None
        except jwt.PyJWTError:
            raise Unauthorized("The token is invalid.") from None
        # checked once the signature verified, so other failures keep their own messages
        strict = issuer.source is None or issuer.source.require_low_s
        if strict and not is_low_s(token):
            raise Unauthorized("The token's signature is invalid.")
        if claims.get("action") != action:
            raise Unauthorized(f"The token does not allow '{action}'.")
        if claims.get("path") != path:
            raise Unauthorized("The token is for another stream path.")
        return claims

    def _peek(self, token: object) -> tuple[_Issuer, dict[str, Any]]:
        """Header and issuer, unverified; enough to refuse the wrong algorithm and pick the key set."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise Unauthorized("The credential is not a media token.")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthorized("The token is invalid.") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"The token must be signed with {ALGORITHM}.")
        iss = unverified.get("iss") if isinstance(unverified, dict) else None
        if iss == self._own.name:
            return self._own, header
        trusted = self._trusted.get(iss) if isinstance(iss, str) else None
        if trusted is None:
            raise Unauthorized("The token's issuer is not trusted.")
        return trusted, header

    def _stale(self, issuer: _Issuer, kid: object) -> bool:
        assert issuer.source is not None
        age = time.monotonic() - issuer.fetched_at
        if issuer.fetched_at and age < 10:  # a burst of unknown kids must not hammer the issuer
            return False
        return age > issuer.source.refresh_seconds or kid not in issuer.keys

    async def _refresh(self, issuer: _Issuer) -> None:
        assert issuer.source is not None and issuer.source.jwks_url
        async with issuer.lock:
            if not self._stale(issuer, None) and issuer.keys:
                return
            issuer.fetched_at = time.monotonic()
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
            try:
                resp = await self._http.get(issuer.source.jwks_url)
                resp.raise_for_status()
                self._set_jwks(issuer, resp.json())
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("fetching the JWKS of trusted issuer %r failed: %s", issuer.name, type(exc).__name__)

    @staticmethod
    def _set_jwks(issuer: _Issuer, data: Mapping[str, Any]) -> None:
        keys: dict[str, _Key] = {}
        for jwk in data.get("keys", []) if isinstance(data, Mapping) else []:
            if not isinstance(jwk, Mapping) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
                continue
            try:
                pub = ECAlgorithm.from_jwk(json.dumps(dict(jwk)))
            except (jwt.PyJWTError, ValueError, TypeError):
                continue
            if isinstance(pub, ec.EllipticCurvePrivateKey):
                pub = pub.public_key()
            kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else thumbprint(pub)
            keys[str(kid)] = _Key(str(kid), None, pub)
        issuer.keys = keys


def _role_of(name: str, names: TokenAudiences | None) -> str | None:
    if name in ROLES:
        return name
    if names is not None:
        for role in ROLES:
            if getattr(names, role) == name:
                return role
    return DEFAULT_AUDIENCE_ROLES.get(name)


def _new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_blocks(text: str) -> list[str]:
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith("-----END"):
                blocks.append("\n".join(current) + "\n")
                current = []
    return blocks


def _retired(rec: SigningKey, now: datetime) -> SigningKey:
    return replace(rec, retired_at=now, updated_at=now)


def is_jwt(credential: str) -> bool:
    """Whether a credential looks like a compact JWS (three dot-separated parts), not a stream key."""
    return credential.count(".") == 2 and not credential.startswith("live_")
