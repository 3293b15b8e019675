"""``/v1/studios/{studioId}/program/session-tokens``: a read token for a studio's program (monitors)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from litestar import Controller, Response, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from trax.domain.errors import InvalidRequest, Unavailable
from trax.domain.paths import program_path
from trax.server.routes import Actor, Rt, Svc, created, route
from trax.server.wire import In, IngestCredentialsOut, credentials_out


class ProgramTokenCreate(In):
    """No ``audience``: a program token covers every way to watch (WHEP, SRT, RTMP), like a source's."""

    action: Literal["read"] = "read"
    ttl_seconds: Annotated[int, Meta(ge=1)] | None = None


class ProgramTokenController(Controller):
    """Mounted with the sources' session tokens (``public_api.session_tokens_enabled``)."""

    path = "/studios/{studioId:str}/program/session-tokens"
    tags = ["studios"]

    @post(
        "/",
        status_code=201,
        **route(
            "createProgramSessionToken",
            "stream:read",
            summary="Mint a read token for the studio's program (WHEP, SRT or RTMP playback)",
            body=True,
            body_optional=True,
            mutating=True,
        ),
    )
    async def create_program_token(
        self, svc: Svc, rt: Rt, actor: Actor, studioId: FromPath[str], data: JSONBody[ProgramTokenCreate | None] = None
    ) -> Response[IngestCredentialsOut]:
        body = data or ProgramTokenCreate()
        # the studio lookup checks tenancy with the caller's own rights (stream:read)
        await svc.studios.stream_status(replace(actor, scopes=frozenset({"stream:read"})), studioId)
        tokens = getattr(rt, "media_tokens", None)
        if tokens is None:
            raise Unavailable("Media tokens are not available on this deployment.", retry_after=60)
        try:
            creds = await tokens.mint(path=program_path(studioId), action=body.action, ttl=body.ttl_seconds)
        except InvalidRequest as exc:
            if exc.param == "ttl":
                raise InvalidRequest(exc.message, param="ttlSeconds") from None
            raise
        return created(credentials_out(creds), f"/v1/studios/{studioId}/stream-status")
