"""Every /v1 route with its scope and a valid request, over a freshly seeded account.

The tests walk this table, so a route added to the app but not here fails
``test_catalog_covers_every_route``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trax.domain.scopes import SCOPES
from trax.runtime import Runtime
from trax.services import Principal


@dataclass
class World:
    """One account's objects, created through the services (not the API under test)."""

    account_id: str
    secret: str
    ids: dict[str, str] = field(default_factory=dict)
    upload_token: str = ""


async def seed(rt: Runtime, name: str) -> World:
    acct = await rt.services.accounts.create(name)
    op = Principal.operator(acct.id)
    _, secret = await rt.services.keys.create(op, name="full", scopes=list(SCOPES))
    s = rt.services
    studio = await s.studios.create(op, name="Studio")
    live = await s.studios.create(op, name="Live studio")
    await s.studios.go_live(op, live.id)
    source = await s.sources.create(op, studio.id, name="Cam", kind="srt")
    dest = await s.destinations.create(
        op,
        studio.id,
        {"name": "Out", "platform": "custom_rtmp", "rtmpUrl": "rtmp://x.example/app", "streamKey": "abcd1234"},
    )
    conn = await s.connections.link(acct.id, platform="loopback", display_name="Loop", external_account_id="ext-1")
    msg = await s.chat.send(op, studio.id, text="hello")
    upload, asset, token = await s.media.initiate_upload(
        op, name="a.bin", content_type="application/octet-stream", size_bytes=4
    )
    # only keys:manage, so a key holding just that scope may rotate or revoke it (a key cannot touch a stronger one)
    key, _ = await s.keys.create(op, name="other", scopes=["keys:manage"])
    w = World(acct.id, secret, upload_token=token)
    w.ids.update(
        studio=studio.id,
        live=live.id,
        source=source.id,
        destination=dest.id,
        connection=conn.id,
        message=msg.id,
        asset=asset.id,
        upload=upload.id,
        key=key.id,
    )
    return w


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    scope: str | None
    ok: tuple[int, ...]
    body: Callable[[World], Any] | None = None

    def path(self, w: World) -> str:
        return self.template.format(**w.ids)

    @property
    def mutating(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")

    @property
    def openapi_path(self) -> str:
        names = {
            "studio": "studioId",
            "live": "studioId",
            "source": "sourceId",
            "destination": "destinationId",
            "connection": "connectionId",
            "asset": "assetId",
            "upload": "uploadId",
            "key": "keyId",
        }
        out = self.template
        for k, v in names.items():
            out = out.replace("{" + k + "}", "{" + v + "}")
        return out


S = "/v1/studios/{studio}"
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/studios", "studios:read", (200,)),
    Route("POST", "/v1/studios", "studios:write", (201,), lambda w: {"name": "New"}),
    Route("GET", S, "studios:read", (200,)),
    Route("PATCH", S, "studios:write", (200,), lambda w: {"description": "d"}),
    Route("DELETE", S, "studios:write", (204,)),
    Route("GET", S + "/stream-status", "stream:read", (200,)),
    Route("POST", S + "/go-live", "stream:write", (202,)),
    Route("POST", "/v1/studios/{live}/go-offline", "stream:write", (202,)),
    Route("GET", S + "/sources", "sources:read", (200,)),
    Route("POST", S + "/sources", "sources:write", (201,), lambda w: {"name": "Cam 2", "kind": "rtmp"}),
    Route("GET", S + "/sources/{source}", "sources:read", (200,)),
    Route("PATCH", S + "/sources/{source}", "sources:write", (200,), lambda w: {"name": "Renamed"}),
    Route("DELETE", S + "/sources/{source}", "sources:write", (204,)),
    Route("POST", S + "/sources/{source}/session-tokens", "sources:write", (201,), lambda w: {"action": "publish"}),
    Route("POST", S + "/sources/{source}/stream-key", "sources:write", (200,)),
    Route("POST", S + "/program/session-tokens", "stream:read", (201,), lambda w: {"action": "read"}),
    Route("GET", S + "/destinations", "destinations:read", (200,)),
    Route(
        "POST",
        S + "/destinations",
        "destinations:write",
        (201,),
        lambda w: {"name": "YT", "platform": "custom_rtmp", "rtmpUrl": "rtmp://h.example/a", "streamKey": "k123"},
    ),
    Route("GET", S + "/destinations/{destination}", "destinations:read", (200,)),
    Route("PATCH", S + "/destinations/{destination}", "destinations:write", (200,), lambda w: {"enabled": False}),
    Route("DELETE", S + "/destinations/{destination}", "destinations:write", (204,)),
    Route("GET", "/v1/connections", "connections:read", (200,)),
    Route("GET", "/v1/connections/{connection}", "connections:read", (200,)),
    Route("DELETE", "/v1/connections/{connection}", "connections:write", (204,)),
    Route("GET", S + "/chat/messages", "chat:read", (200,)),
    Route("POST", S + "/chat/messages", "chat:write", (201,), lambda w: {"text": "hi"}),
    Route("GET", "/v1/media", "media:read", (200,)),
    Route("GET", "/v1/media/{asset}", "media:read", (200,)),
    Route("DELETE", "/v1/media/{asset}", "media:write", (204,)),
    Route(
        "POST",
        "/v1/media/uploads",
        "media:write",
        (201,),
        lambda w: {"name": "b.bin", "contentType": "application/octet-stream", "sizeBytes": 3},
    ),
    Route("GET", "/v1/keys", "keys:manage", (200,)),
    Route("POST", "/v1/keys", "keys:manage", (201,), lambda w: {"name": "ci", "scopes": ["keys:manage"]}),
    Route("DELETE", "/v1/keys/{key}", "keys:manage", (204,)),
    Route("POST", "/v1/keys/{key}/rotate", "keys:manage", (201,), lambda w: {"gracePeriodSeconds": 0}),
)

META_ROUTES = (("GET", "/v1/health"), ("GET", "/v1/openapi.json"), ("GET", "/.well-known/jwks.json"))
UPLOAD_ROUTE = ("PUT", "/v1/uploads/{uploadId}")
