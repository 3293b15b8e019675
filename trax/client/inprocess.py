"""In-process transport: ``/v1`` requests answered by ``trax.services`` directly, no HTTP.

It speaks the /v1 wire form (docs/api.md: camelCase JSON objects, pages with
``nextCursor``), so ``trax.connect`` shares the SDK's object model with the
remote clients. Each answer is built from an allow-list of fields: stored
secrets (key hashes, stream keys) have no way out.
"""

from __future__ import annotations

import re
import secrets as _secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from trax.client.models import Upload as UploadModel
from trax.client.models import wire_time
from trax.domain.accounts import Account
from trax.domain.errors import InternalError, InvalidRequest, MethodNotAllowed, NotFound, Unauthorized
from trax.domain.keys import ApiKey, RateLimitOverride
from trax.domain.media import Upload
from trax.domain.pages import Page
from trax.domain.paths import program_path
from trax.ingest.urls import stream_key_urls
from trax.runtime import Runtime
from trax.server import wire
from trax.services import Principal

UPLOAD_PATH = "/v1/uploads/{id}"
_LOCAL_ORIGIN = "trax-local://in-process"


# --- domain -> wire: the server's own conversions, so in-process answers are the /v1 answers ---


def _plain(struct: msgspec.Struct) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(struct)
    return out


def _as_plain(convert: Callable[[Any], msgspec.Struct]) -> Callable[[Any], dict[str, Any]]:
    """One of the server's ``*_out`` conversions, answering a plain JSON-ready dict."""
    return lambda obj: _plain(convert(obj))


studio_wire = _as_plain(wire.studio_out)
status_wire = _as_plain(wire.stream_status_out)
source_wire = _as_plain(wire.source_out)
destination_wire = _as_plain(wire.destination_out)
connection_wire = _as_plain(wire.connection_out)
chat_wire = _as_plain(wire.chat_out)
asset_wire = _as_plain(wire.asset_out)
credentials_wire = _as_plain(wire.credentials_out)  # ``IngestCredentials`` from runtime.media_tokens.mint


def key_wire(k: ApiKey, secret: str | None = None) -> dict[str, Any]:
    return _plain(wire.key_out(k) if secret is None else wire.key_with_secret(k, secret))


def page_wire(page: Page[Any], item: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"data": [item(x) for x in page.data]}
    if page.next_cursor:
        out["nextCursor"] = page.next_cursor
    return out


# --- wire -> arguments ---------------------------------------------------------------


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise InvalidRequest("The body must be a JSON object.", param="body")
    return dict(body)


def _arg(body: Mapping[str, Any], key: str) -> Any:
    """A body field as given; the service validates its type and value."""
    return body.get(key)


def _only(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise InvalidRequest(f"Unknown field {key!r}.", param=str(key))


def _limit(params: Mapping[str, Any]) -> int | None:
    raw = params.get("limit")
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise InvalidRequest("limit must be an integer.", param="limit") from None


def _time(value: Any, param: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidRequest(f"{param} must be an RFC 3339 timestamp.", param=param) from None


@dataclass
class _Req:
    match: re.Match[str]
    params: Mapping[str, Any]
    body: Any

    def __getitem__(self, name: str) -> str:
        return self.match.group(name)


Handler = Callable[[_Req], Awaitable[Any]]


class LocalTransport:
    """Dispatches ``(method, path)`` to the services as ``principal`` (an operator for one account)."""

    def __init__(self, runtime: Runtime, principal: Principal) -> None:
        self.runtime = runtime
        self.principal = principal
        self._upload_tokens: dict[str, str] = {}
        s = runtime.services
        p = principal
        studio = r"/v1/studios/(?P<sid>[^/]+)"
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

        def route(pattern: str, **handlers: Handler) -> None:
            self._routes.append((re.compile("^" + pattern + "$"), handlers))

        async def health(r: _Req) -> Any:
            from trax import __version__

            await self.runtime.storage.ping()
            return {"status": "ok", "version": __version__, "apiVersion": "1"}

        route("/v1/health", GET=health)

        async def list_studios(r: _Req) -> Any:
            page = await s.studios.list(p, limit=_limit(r.params), cursor=r.params.get("cursor"))
            return page_wire(page, studio_wire)

        async def create_studio(r: _Req) -> Any:
            body = _object(r.body)
            _only(body, ("name", "description"))
            return studio_wire(
                await s.studios.create(p, name=_arg(body, "name"), description=_arg(body, "description"))
            )

        route("/v1/studios", GET=list_studios, POST=create_studio)

        async def get_studio(r: _Req) -> Any:
            return studio_wire(await s.studios.get(p, r["sid"]))

        async def patch_studio(r: _Req) -> Any:
            return studio_wire(await s.studios.update(p, r["sid"], _object(r.body)))

        async def delete_studio(r: _Req) -> Any:
            await s.studios.delete(p, r["sid"])

        route(studio, GET=get_studio, PATCH=patch_studio, DELETE=delete_studio)

        async def stream_status(r: _Req) -> Any:
            return status_wire(await s.studios.stream_status(p, r["sid"]))

        async def go_live(r: _Req) -> Any:
            return status_wire((await s.studios.go_live(p, r["sid"]))[0])

        async def go_offline(r: _Req) -> Any:
            return status_wire((await s.studios.go_offline(p, r["sid"]))[0])

        route(studio + "/stream-status", GET=stream_status)
        route(studio + "/go-live", POST=go_live)
        route(studio + "/go-offline", POST=go_offline)

        async def list_sources(r: _Req) -> Any:
            page = await s.sources.list(p, r["sid"], limit=_limit(r.params), cursor=r.params.get("cursor"))
            return page_wire(page, source_wire)

        async def create_source(r: _Req) -> Any:
            body = _object(r.body)
            _only(body, ("name", "kind", "mediaAssetId"))
            src = await s.sources.create(
                p,
                r["sid"],
                name=_arg(body, "name"),
                kind=_arg(body, "kind"),
                media_asset_id=_arg(body, "mediaAssetId"),
            )
            return source_wire(src)

        route(studio + "/sources", GET=list_sources, POST=create_source)

        async def get_source(r: _Req) -> Any:
            return source_wire(await s.sources.get(p, r["sid"], r["id"]))

        async def patch_source(r: _Req) -> Any:
            return source_wire(await s.sources.update(p, r["sid"], r["id"], _object(r.body)))

        async def delete_source(r: _Req) -> Any:
            await s.sources.delete(p, r["sid"], r["id"])

        route(studio + "/sources/(?P<id>[^/]+)", GET=get_source, PATCH=patch_source, DELETE=delete_source)

        async def session_token(r: _Req) -> Any:
            body = _object(r.body)
            _only(body, ("action", "ttlSeconds"))
            src = await s.sources.get(p, r["sid"], r["id"])
            return await self.mint(src.path, body.get("action", "publish"), ttl=_arg(body, "ttlSeconds"))

        route(studio + "/sources/(?P<id>[^/]+)/session-tokens", POST=session_token)

        async def stream_key(r: _Req) -> Any:
            src, key = await s.sources.rotate_stream_key(p, r["sid"], r["id"])
            urls = stream_key_urls(self.runtime.settings.ingest, src.path, key)
            return _plain(wire.stream_key_out(src.id, src.path, key, urls))

        route(studio + "/sources/(?P<id>[^/]+)/stream-key", POST=stream_key)

        async def program_token(r: _Req) -> Any:
            body = _object(r.body)
            _only(body, ("action", "ttlSeconds"))
            await s.studios.stream_status(replace(p, scopes=frozenset({"stream:read"})), r["sid"])
            return await self.mint(
                program_path(r["sid"]),
                body.get("action", "read"),
                ttl=_arg(body, "ttlSeconds"),
                audience=_arg(body, "audience"),
            )

        route(studio + "/program/session-tokens", POST=program_token)

        async def list_dst(r: _Req) -> Any:
            page = await s.destinations.list(p, r["sid"], limit=_limit(r.params), cursor=r.params.get("cursor"))
            return page_wire(page, destination_wire)

        async def create_dst(r: _Req) -> Any:
            return destination_wire(await s.destinations.create(p, r["sid"], _object(r.body)))

        route(studio + "/destinations", GET=list_dst, POST=create_dst)

        async def get_dst(r: _Req) -> Any:
            return destination_wire(await s.destinations.get(p, r["sid"], r["id"]))

        async def patch_dst(r: _Req) -> Any:
            return destination_wire(await s.destinations.update(p, r["sid"], r["id"], _object(r.body)))

        async def delete_dst(r: _Req) -> Any:
            await s.destinations.delete(p, r["sid"], r["id"])

        route(studio + "/destinations/(?P<id>[^/]+)", GET=get_dst, PATCH=patch_dst, DELETE=delete_dst)

        async def list_chat(r: _Req) -> Any:
            page = await s.chat.list(
                p, r["sid"], limit=_limit(r.params), cursor=r.params.get("cursor"), after=r.params.get("after")
            )
            return page_wire(page, chat_wire)

        async def send_chat(r: _Req) -> Any:
            body = _object(r.body)
            _only(body, ("text",))
            return chat_wire(await s.chat.send(p, r["sid"], text=_arg(body, "text")))

        route(studio + "/chat/messages", GET=list_chat, POST=send_chat)

        async def list_conn(r: _Req) -> Any:
            page = await s.connections.list(p, limit=_limit(r.params), cursor=r.params.get("cursor"))
            return page_wire(page, connection_wire)

        async def get_conn(r: _Req) -> Any:
            return connection_wire(await s.connections.get(p, r["id"]))

        async def unlink(r: _Req) -> Any:
            await s.connections.unlink(p, r["id"])

        route("/v1/connections", GET=list_conn)
        route("/v1/connections/(?P<id>[^/]+)", GET=get_conn, DELETE=unlink)

        async def list_media(r: _Req) -> Any:
            page = await s.media.list(p, limit=_limit(r.params), cursor=r.params.get("cursor"))
            return page_wire(page, asset_wire)

        async def get_media(r: _Req) -> Any:
            return asset_wire(await s.media.get(p, r["id"]))

        async def delete_media(r: _Req) -> Any:
            await s.media.delete(p, r["id"])

        async def create_upload(r: _Req) -> Any:
            body = _object(r.body)
            _only(body, ("name", "contentType", "sizeBytes", "sha256"))
            upload, _asset, token = await s.media.initiate_upload(
                p,
                name=_arg(body, "name"),
                content_type=_arg(body, "contentType"),
                size_bytes=_arg(body, "sizeBytes"),
                sha256=_arg(body, "sha256"),
            )
            return self._upload_wire(upload, token, _asset.content_type)

        route("/v1/media", GET=list_media)
        route("/v1/media/uploads", POST=create_upload)
        route("/v1/media/(?P<id>[^/]+)", GET=get_media, DELETE=delete_media)

        async def list_keys(r: _Req) -> Any:
            page = await s.keys.list(p, limit=_limit(r.params), cursor=r.params.get("cursor"))
            return page_wire(page, key_wire)

        async def create_key(r: _Req) -> Any:
            body = _object(r.body)
            _only(body, ("name", "scopes", "expiresAt", "rateLimit"))
            limit = _arg(body, "rateLimit")
            override = None
            if limit is not None:
                if not isinstance(limit, Mapping):
                    raise InvalidRequest("rateLimit must be an object.", param="rateLimit")
                try:
                    override = RateLimitOverride(
                        capacity=int(limit["capacity"]), refill_per_second=float(limit["refillPerSecond"])
                    )
                except (KeyError, TypeError, ValueError):
                    raise InvalidRequest("rateLimit needs capacity and refillPerSecond.", param="rateLimit") from None
            scopes = _arg(body, "scopes")
            if not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes):
                raise InvalidRequest("scopes must be a list of strings.", param="scopes")
            key, secret = await s.keys.create(
                p,
                name=_arg(body, "name"),
                scopes=scopes,
                expires_at=_time(_arg(body, "expiresAt"), "expiresAt"),
                rate_limit=override,
            )
            return key_wire(key, secret)

        async def revoke_key(r: _Req) -> Any:
            await s.keys.revoke(p, r["id"])

        async def rotate_key(r: _Req) -> Any:
            body = _object(r.body)
            _only(body, ("gracePeriodSeconds",))
            grace = body.get("gracePeriodSeconds", 0)
            if isinstance(grace, bool) or not isinstance(grace, int):
                raise InvalidRequest("gracePeriodSeconds must be an integer.", param="gracePeriodSeconds")
            key, secret = await s.keys.rotate(p, r["id"], grace_seconds=grace)
            return key_wire(key, secret)

        route("/v1/keys", GET=list_keys, POST=create_key)
        route("/v1/keys/(?P<id>[^/]+)", DELETE=revoke_key)
        route("/v1/keys/(?P<id>[^/]+)/rotate", POST=rotate_key)

    # --- the transport ------------------------------------------------------------

    async def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        path = path.split("?", 1)[0]
        for pattern, handlers in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            handler = handlers.get(method.upper())
            if handler is None:
                raise MethodNotAllowed(headers={"Allow": ", ".join(sorted(handlers))})
            return await handler(_Req(match, dict(params or {}), json))
        raise NotFound("No such route.")

    def _upload_wire(self, upload: Upload, token: str, content_type: str) -> dict[str, Any]:
        self._upload_tokens[upload.id] = token
        return {
            "id": upload.id,
            "assetId": upload.asset_id,
            "method": "PUT",
            "url": f"{_LOCAL_ORIGIN}{UPLOAD_PATH.format(id=upload.id)}?token={token}",
            "headers": {"Content-Type": content_type},
            "expiresAt": wire_time(upload.expires_at),
            "maxBytes": upload.max_bytes,
        }

    async def send_upload(self, upload: UploadModel, chunks: AsyncIterator[bytes], size: int) -> Any:
        parts = urlsplit(upload.url)
        token = (parse_qs(parts.query).get("token") or [""])[0]
        if not token or not _secrets.compare_digest(self._upload_tokens.get(upload.id, ""), token):
            raise Unauthorized("The upload URL is invalid.")
        asset = await self.runtime.services.media.receive_upload(upload.id, token, chunks)
        self._upload_tokens.pop(upload.id, None)
        return asset_wire(asset)

    async def mint(self, path: str, action: str, *, audience: Any = None, ttl: Any = None) -> dict[str, Any]:
        """Ingest credentials from the runtime's media token service (the ingest plane's)."""
        tokens = getattr(self.runtime, "media_tokens", None)
        if tokens is None:
            raise InternalError("This build has no media token service (trax.ingest.tokens).")
        creds = await tokens.mint(path=path, action=action, audience=audience, ttl=ttl)
        return credentials_wire(creds)

    async def aclose(self) -> None:
        return None


async def operator_for(runtime: Runtime, account: str | None) -> tuple[Account, Principal]:
    """The named account (created if missing) and an operator principal for it."""
    services = runtime.services.accounts
    if account is None:
        page = await services.list(limit=1)
        if page.data:
            acct = page.data[0]
        else:
            acct = await services.create("default")
    else:
        try:
            acct = await services.get(account)
        except NotFound:
            acct = await services.create(account)
    return acct, Principal.operator(acct.id)
