"""The /v1 wire format: msgspec structs, separate from the domain dataclasses.

Responses are built with the ``*_out`` converters below; timestamps are sent
as RFC 3339 UTC strings with ``Z`` and millisecond precision (docs/api.md, "Layout").
Request structs forbid unknown fields, so a typo is a 400 naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from trax.domain.chat import ChatMessage
from trax.domain.connections import Connection
from trax.domain.destinations import Destination
from trax.domain.errors import InvalidRequest
from trax.domain.keys import ApiKey
from trax.domain.media import MediaAsset, Upload
from trax.domain.program import BITRATE_RANGE, FPS_RANGE, MAX_PROGRAM_SOURCES, MAX_SIZE, MIN_SIZE, ProgramSettings
from trax.domain.sources import Source, SourceKind
from trax.domain.stream import SourceState as DomainSourceState
from trax.domain.stream import StreamStatus
from trax.domain.studios import Studio
from trax.domain.text import NAME_PATTERN, PROSE_PATTERN
from trax.ingest.urls import encoder_fields

# --- shared field types ---------------------------------------------------------

Timestamp = Annotated[
    str,
    Meta(
        description="RFC 3339 UTC time with millisecond precision.",
        examples=["2026-11-28T17:00:00.123Z"],
        extra_json_schema={"extra": {"format": "date-time"}},
    ),
]
Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=NAME_PATTERN, examples=["Morning show"])]
Description = Annotated[str, Meta(max_length=1000, pattern=PROSE_PATTERN)]
StudioStatusT = Literal["offline", "starting", "live", "stopping"]
SourceStatusT = Literal["idle", "connecting", "live", "error"]
SourceKindT = Literal["srt", "rtmp", "whip", "media"]
DestinationStatusT = Literal["idle", "connecting", "live", "error"]
ScopeT = Literal[
    "studios:read",
    "studios:write",
    "sources:read",
    "sources:write",
    "destinations:read",
    "destinations:write",
    "stream:read",
    "stream:write",
    "connections:read",
    "connections:write",
    "chat:read",
    "chat:write",
    "media:read",
    "media:write",
    "webhooks:manage",
    "keys:manage",
]


_TS_CACHE: dict[datetime, str] = {}
_TS_CACHE_MAX = 8192


def ts(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z`` and exactly three fractional digits.

    Lists format two timestamps per item and the same rows are read again and
    again, so formatted values are memoised (a bounded dict; datetimes are immutable).
    """
    hit = _TS_CACHE.get(value)
    if hit is not None:
        return hit
    v = value
    if v.tzinfo is not UTC:
        v = v.astimezone(UTC) if v.tzinfo is not None else v.replace(tzinfo=UTC)
    out = v.isoformat(timespec="milliseconds")[:-6] + "Z"
    if len(_TS_CACHE) >= _TS_CACHE_MAX:
        _TS_CACHE.clear()
    _TS_CACHE[value] = out
    return out


def opt_ts(value: datetime | None) -> str | None:
    return None if value is None else ts(value)


class Out(Struct, rename="camel", omit_defaults=True):
    """Response objects: camelCase, optional fields left out when unknown."""


class In(Struct, rename="camel", forbid_unknown_fields=True):
    """Request bodies: camelCase, unknown fields rejected."""


# --- errors, meta ------------------------------------------------------------------


class ErrorBody(Out):
    code: Annotated[str, Meta(examples=["not_found"])]
    message: Annotated[str, Meta(examples=["No such studio."])]
    request_id: Annotated[str, Meta(examples=["req_01JDQ4V1ZQ7Y9N6X3W2T8R5K0M"])]
    param: str | None = None
    required_scope: str | None = None


class ErrorEnvelope(Out):
    error: ErrorBody


class Health(Out):
    status: Literal["ok", "degraded"]
    version: str
    api_version: str


# --- studios -----------------------------------------------------------------------


LayoutT = Literal["single", "side_by_side", "grid", "pip"]


class ProgramOutputOut(Out, omit_defaults=False):
    width: int
    height: int
    fps: int
    video_bitrate: int
    audio_bitrate: int


class ProgramOut(Out, omit_defaults=False):
    layout: LayoutT
    sources: list[str]
    output: ProgramOutputOut
    passthrough: bool
    record: bool
    slate: Annotated[str, Meta(description="'black' or a media asset id.")]


class StudioOut(Out):
    id: Annotated[str, Meta(examples=["studio_01JDQ4V1ZQ7Y9N6X3W2T8R5K0M"])]
    name: str
    status: StudioStatusT
    created_at: Timestamp
    updated_at: Timestamp
    description: str | None = None
    program: ProgramOut | None = None


class StudioPage(Out):
    data: list[StudioOut]
    next_cursor: str | None = None


class StudioCreate(In):
    name: Name
    description: Description | None = None


class ProgramOutputPatch(In):
    # the ranges are the domain's (trax.domain.program); the service checks them again for in-process callers
    width: Annotated[int, Meta(ge=MIN_SIZE[0], le=MAX_SIZE[0])] | UnsetType = UNSET
    height: Annotated[int, Meta(ge=MIN_SIZE[1], le=MAX_SIZE[1])] | UnsetType = UNSET
    fps: Annotated[int, Meta(ge=FPS_RANGE[0], le=FPS_RANGE[1])] | UnsetType = UNSET
    video_bitrate: Annotated[int, Meta(ge=BITRATE_RANGE[0], le=BITRATE_RANGE[1])] | UnsetType = UNSET
    audio_bitrate: Annotated[int, Meta(ge=BITRATE_RANGE[0], le=BITRATE_RANGE[1])] | UnsetType = UNSET


class ProgramPatch(In):
    """Fields given replace the current ones (``output`` field by field); fields left out stay."""

    layout: LayoutT | UnsetType = UNSET
    sources: Annotated[list[str], Meta(max_length=MAX_PROGRAM_SOURCES)] | UnsetType | None = UNSET
    output: ProgramOutputPatch | UnsetType = UNSET
    passthrough: bool | UnsetType = UNSET
    record: bool | UnsetType = UNSET
    slate: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET


class StudioUpdate(In):
    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    program: ProgramPatch | UnsetType = UNSET


class SourceMediaOut(Out):
    """What the publisher sends, while the source is live (fields it cannot tell are absent)."""

    video_codec: Annotated[str, Meta(examples=["h264"])] | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate: Annotated[int, Meta(description="Bits per second, every track together.")] | None = None
    audio_codec: Annotated[str, Meta(examples=["aac"])] | None = None
    sample_rate: int | None = None
    channels: int | None = None


class SourceState(Out):
    id: str
    status: SourceStatusT
    name: str = ""
    kind: SourceKindT | None = None
    reason: (
        Annotated[str, Meta(description="Why the source is in error, or a warning while live (`no_keyframes`).")] | None
    ) = None
    media: SourceMediaOut | None = None


class DestinationError(Out):
    code: Annotated[str, Meta(examples=["connection_refused"])]
    message: str


class DestinationState(Out):
    id: str
    status: DestinationStatusT
    error: DestinationError | None = None


class ProgramStateOut(Out):
    status: Literal["stopped", "starting", "running", "error"]
    error: str | None = None


class StreamStatusOut(Out):
    studio_id: str
    status: StudioStatusT
    updated_at: Timestamp
    sources: list[SourceState]
    destinations: list[DestinationState]
    live_since: Timestamp | None = None
    program: ProgramStateOut | None = None


_PROGRAM_OUT: dict[ProgramSettings, ProgramOut] = {}


def program_out(p: ProgramSettings) -> ProgramOut:
    # Studios share a handful of program settings (mostly the default), so the wire form is memoised.
    hit = _PROGRAM_OUT.get(p)
    if hit is not None:
        return hit
    o = p.output
    out = ProgramOut(
        layout=p.layout.value,
        sources=list(p.sources or ()),
        output=ProgramOutputOut(o.width, o.height, o.fps, o.video_bitrate, o.audio_bitrate),
        passthrough=p.passthrough,
        record=p.record,
        slate=p.slate,
    )
    if len(_PROGRAM_OUT) >= 1024:
        _PROGRAM_OUT.clear()
    _PROGRAM_OUT[p] = out
    return out


def studio_out(s: Studio) -> StudioOut:
    return StudioOut(
        id=s.id,
        name=s.name,
        status=s.status,  # type: ignore[arg-type]  # a StrEnum encodes as its value; cheaper on lists
        created_at=ts(s.created_at),
        updated_at=ts(s.updated_at),
        description=s.description,
        program=program_out(s.program),
    )


def destination_error(code: str | None, message: str | None) -> DestinationError | None:
    if code is None and message is None:
        return None
    return DestinationError(code=code or "error", message=message or "")


def source_state_out(x: DomainSourceState) -> SourceState:
    m = x.media
    return SourceState(
        id=x.id,
        status=x.status.value,
        name=x.name,
        kind=None if x.kind is None else x.kind.value,
        reason=x.reason,
        media=None
        if m is None
        else SourceMediaOut(
            video_codec=m.video_codec,
            width=m.width,
            height=m.height,
            fps=m.fps,
            bitrate=m.bitrate,
            audio_codec=m.audio_codec,
            sample_rate=m.sample_rate,
            channels=m.channels,
        ),
    )


def stream_status_out(s: StreamStatus) -> StreamStatusOut:
    program = s.program
    return StreamStatusOut(
        studio_id=s.studio_id,
        status=s.status.value,
        updated_at=ts(s.updated_at),
        live_since=opt_ts(s.live_since),
        sources=[source_state_out(x) for x in s.sources],
        destinations=[
            DestinationState(id=x.id, status=x.status.value, error=destination_error(x.error_code, x.error))
            for x in s.destinations
        ],
        program=None if program is None else ProgramStateOut(status=program.status, error=program.error),  # type: ignore[arg-type]
    )


# --- sources -----------------------------------------------------------------------


class IngestInfo(Out):
    path: Annotated[str, Meta(examples=["inputs/srt-6f1c2b9e-1d2a-4c1e-9b8f-2f0d7c3a5e41"])]
    protocols: list[str]


class SourceOut(Out):
    id: str
    studio_id: str
    name: str
    kind: SourceKindT
    status: SourceStatusT
    ingest: IngestInfo
    created_at: Timestamp
    updated_at: Timestamp
    media_asset_id: str | None = None
    loop: bool | None = None
    playing: bool | None = None
    status_reason: str | None = None
    """Why the status is what it is: the error of an ``error`` Source, or ``no_keyframes`` on a ``live`` one
    whose video never had a keyframe (no reader can start it)."""


class SourcePage(Out):
    data: list[SourceOut]
    next_cursor: str | None = None


class SourceCreate(In):
    name: Name
    kind: SourceKindT
    media_asset_id: str | None = None


class SourceUpdate(In):
    name: Name | UnsetType = UNSET
    loop: Annotated[bool, Meta(description="Media sources: start again at the end.")] | UnsetType = UNSET
    playing: Annotated[bool, Meta(description="Media sources: false pauses (the source goes idle).")] | UnsetType = (
        UNSET
    )


def source_out(s: Source) -> SourceOut:
    return SourceOut(
        id=s.id,
        studio_id=s.studio_id,
        name=s.name,
        kind=s.kind.value,
        status=s.status.value,
        ingest=IngestInfo(path=s.path, protocols=list(s.protocols)),
        status_reason=s.status_reason,
        created_at=ts(s.created_at),
        updated_at=ts(s.updated_at),
        media_asset_id=s.media_asset_id,
        loop=s.loop if s.kind is SourceKind.MEDIA else None,
        playing=s.playing if s.kind is SourceKind.MEDIA else None,
    )


class IngestUrls(Out):
    srt: str | None = None
    rtmp: str | None = None
    rtmps: str | None = None
    whip: str | None = None
    whep: str | None = None


class EncoderTarget(Out):
    """An RTMP(S) URL split the way OBS asks for it: Server, then Stream Key (which carries the credential)."""

    server: Annotated[str, Meta(examples=["rtmp://127.0.0.1:1935/inputs"])]
    stream_key: Annotated[str, Meta(examples=["rtmp-6f1c2b9e-1d2a-4c1e-9b8f-2f0d7c3a5e41?user=trax&pass=<jwt>"])]


class EncoderTargets(Out):
    rtmp: EncoderTarget | None = None
    rtmps: EncoderTarget | None = None


class IngestCredentialsOut(Out):
    token: str
    expires_at: Timestamp
    action: Literal["publish", "read"]
    path: str
    urls: IngestUrls
    obs: EncoderTargets = msgspec.field(default_factory=EncoderTargets)
    """Per RTMP(S) transport, ``server`` and ``streamKey`` for encoders with separate fields (OBS, vMix)."""


class StreamKeyOut(Out):
    """A source's static stream key, shown this once (only a keyed hash is stored)."""

    source_id: str
    path: str
    stream_key: Annotated[str, Meta(examples=["live_3q2b…"])]
    urls: IngestUrls
    obs: EncoderTargets = msgspec.field(default_factory=EncoderTargets)


def stream_key_out(source_id: str, path: str, key: str, urls: dict[str, str]) -> StreamKeyOut:
    known = {k: v for k, v in urls.items() if k in IngestUrls.__struct_fields__}
    return StreamKeyOut(
        source_id=source_id, path=path, stream_key=key, urls=IngestUrls(**known), obs=encoder_targets(known)
    )


class SessionTokenCreate(In):
    action: Literal["publish", "read"] = "publish"
    ttl_seconds: Annotated[int, Meta(ge=1)] | None = None


def credentials_out(c: Any) -> IngestCredentialsOut:
    urls = {k: v for k, v in dict(c.urls).items() if k in IngestUrls.__struct_fields__}
    return IngestCredentialsOut(
        token=c.token,
        expires_at=ts(c.expires_at),
        action=c.action,
        path=c.path,
        urls=IngestUrls(**urls),
        obs=encoder_targets(urls),
    )


def encoder_targets(urls: dict[str, str]) -> EncoderTargets:
    return EncoderTargets(
        **{p: EncoderTarget(server=v["server"], stream_key=v["streamKey"]) for p, v in encoder_fields(urls).items()}
    )


# --- destinations ------------------------------------------------------------------

RtmpUrl = Annotated[str, Meta(max_length=2048, pattern=NAME_PATTERN, examples=["rtmp://live.example.com/app"])]
StreamKey = Annotated[str, Meta(min_length=1, max_length=512, pattern=NAME_PATTERN)]
SrtUrl = Annotated[
    str,
    Meta(
        max_length=2048,
        pattern=NAME_PATTERN,
        description="custom_srt: srt://host:port; a streamid/passphrase in its query is moved to those fields.",
        examples=["srt://ingest.example.com:9000"],
    ),
]
SrtStreamId = Annotated[
    str, Meta(min_length=1, max_length=512, pattern=NAME_PATTERN, description="custom_srt, write-only.")
]
SrtPassphrase = Annotated[
    str, Meta(min_length=10, max_length=79, pattern=NAME_PATTERN, description="custom_srt, write-only.")
]
Platform = Annotated[str, Meta(min_length=1, max_length=50, pattern=NAME_PATTERN, examples=["custom_rtmp"])]


class DestinationOut(Out):
    id: str
    studio_id: str
    name: str
    platform: Annotated[str, Meta(examples=["custom_rtmp"])]
    enabled: bool
    status: DestinationStatusT
    created_at: Timestamp
    updated_at: Timestamp
    connection_id: str | None = None
    error: DestinationError | None = None
    rtmp_url: str | None = None
    stream_key_hint: str | None = None
    srt_url: str | None = None


class DestinationPage(Out):
    data: list[DestinationOut]
    next_cursor: str | None = None


class DestinationCreate(In):
    name: Name
    platform: Platform
    connection_id: str | None = None
    enabled: bool = True
    rtmp_url: RtmpUrl | None = None
    stream_key: StreamKey | None = None
    srt_url: SrtUrl | None = None
    streamid: SrtStreamId | None = None
    passphrase: SrtPassphrase | None = None


class DestinationUpdate(In):
    name: Name | UnsetType = UNSET
    platform: Platform | UnsetType = UNSET
    connection_id: str | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET
    rtmp_url: RtmpUrl | UnsetType | None = UNSET
    stream_key: StreamKey | UnsetType | None = UNSET
    srt_url: SrtUrl | UnsetType | None = UNSET
    streamid: SrtStreamId | UnsetType | None = UNSET
    passphrase: SrtPassphrase | UnsetType | None = UNSET


def destination_out(d: Destination) -> DestinationOut:
    return DestinationOut(
        id=d.id,
        studio_id=d.studio_id,
        name=d.name,
        platform=d.platform,
        enabled=d.enabled,
        status=d.status.value,
        created_at=ts(d.created_at),
        updated_at=ts(d.updated_at),
        connection_id=d.connection_id,
        error=destination_error(d.error_code, d.error),
        rtmp_url=d.public_rtmp_url,
        stream_key_hint=d.stream_key_hint,
        srt_url=d.srt_url,
    )


# --- connections -------------------------------------------------------------------


class ConnectionOut(Out):
    id: str
    platform: str
    display_name: str
    external_account_id: str
    status: Literal["active", "expired", "revoked"]
    linked_at: Timestamp


class ConnectionPage(Out):
    data: list[ConnectionOut]
    next_cursor: str | None = None


def connection_out(c: Connection) -> ConnectionOut:
    return ConnectionOut(
        id=c.id,
        platform=c.platform,
        display_name=c.display_name,
        external_account_id=c.external_account_id,
        status=c.status.value,
        linked_at=ts(c.linked_at),
    )


# --- chat --------------------------------------------------------------------------


class ChatAuthor(Out):
    name: str
    external_id: str | None = None


class ChatMessageOut(Out):
    id: str
    studio_id: str
    text: str
    direction: Literal["inbound", "outbound"]
    platform: str
    author: ChatAuthor
    sent_at: Timestamp
    connection_id: str | None = None


class ChatMessagePage(Out):
    data: list[ChatMessageOut]
    next_cursor: str | None = None


class ChatSend(In):
    text: Annotated[str, Meta(min_length=1, max_length=2000, pattern=PROSE_PATTERN, examples=["Welcome to the show!"])]


def chat_out(m: ChatMessage) -> ChatMessageOut:
    return ChatMessageOut(
        id=m.id,
        studio_id=m.studio_id,
        text=m.text,
        direction=m.direction.value,
        platform=m.platform,
        author=ChatAuthor(name=m.author_name, external_id=m.author_external_id),
        sent_at=ts(m.sent_at),
        connection_id=m.connection_id,
    )


# --- media -------------------------------------------------------------------------


class MediaAssetOut(Out):
    id: str
    name: str
    content_type: str
    size_bytes: int
    status: Literal["pending", "processing", "ready", "failed"]
    created_at: Timestamp
    updated_at: Timestamp
    sha256: str | None = None
    duration_seconds: float | None = None
    studio_id: Annotated[str | None, Meta(description="Recordings: the studio whose program this is.")] = None


class MediaAssetPage(Out):
    data: list[MediaAssetOut]
    next_cursor: str | None = None


class UploadCreate(In):
    name: Annotated[str, Meta(min_length=1, max_length=255, pattern=NAME_PATTERN, examples=["intro.mp4"])]
    content_type: Annotated[str, Meta(min_length=1, max_length=255, examples=["video/mp4"])]
    size_bytes: Annotated[int, Meta(ge=1, examples=[1048576])]
    sha256: Annotated[str, Meta(pattern="^[0-9a-f]{64}$")] | None = None


class UploadOut(Out):
    id: str
    asset_id: str
    method: Literal["PUT"]
    url: str
    headers: dict[str, str]
    expires_at: Timestamp
    max_bytes: int


def asset_out(a: MediaAsset) -> MediaAssetOut:
    return MediaAssetOut(
        id=a.id,
        name=a.name,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        status=a.status.value,
        created_at=ts(a.created_at),
        updated_at=ts(a.updated_at),
        sha256=a.sha256,
        duration_seconds=a.duration_seconds,
        studio_id=a.origin_studio_id,
    )


def upload_out(u: Upload, asset: MediaAsset, url: str) -> UploadOut:
    return UploadOut(
        id=u.id,
        asset_id=u.asset_id,
        method="PUT",
        url=url,
        headers={"Content-Type": asset.content_type},
        expires_at=ts(u.expires_at),
        max_bytes=u.max_bytes,
    )


# --- keys --------------------------------------------------------------------------


class RateLimitIn(In):
    capacity: Annotated[int, Meta(ge=1, le=1_000_000)]
    refill_per_second: Annotated[float, Meta(gt=0, le=1_000_000)]


class RateLimitOut(Out):
    capacity: int
    refill_per_second: float


class ApiKeyOut(Out):
    id: str
    name: str
    prefix: Annotated[str, Meta(examples=["sk_live_Ab3x"])]
    scopes: list[str]
    created_at: Timestamp
    last_used_at: Timestamp | None = None
    revoked_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    rate_limit: RateLimitOut | None = None


class ApiKeyWithSecret(ApiKeyOut, kw_only=True):
    secret: Annotated[str, Meta(description="Shown once; store it now.")]


class ApiKeyPage(Out):
    data: list[ApiKeyOut]
    next_cursor: str | None = None


class KeyCreate(In):
    name: Name
    scopes: Annotated[list[ScopeT], Meta(min_length=1)]
    expires_at: Timestamp | None = None
    """Parsed by :func:`future_time`: lax JSON decoding would take a number as a time."""
    rate_limit: RateLimitIn | None = None


class KeyRotate(In):
    grace_period_seconds: Annotated[int, Meta(ge=0, le=604800)] = 0


def future_time(value: str, param: str, now: datetime) -> datetime:
    """An RFC 3339 time with an offset, after ``now`` (in UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{param} must be an RFC 3339 time, e.g. 2030-01-01T00:00:00Z.", param=param) from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"{param} needs a UTC offset or Z.", param=param)
    parsed = parsed.astimezone(UTC)
    if parsed <= now:
        raise InvalidRequest(f"{param} must be in the future.", param=param)
    return parsed


def _key_fields(k: ApiKey) -> dict[str, Any]:
    rl = k.rate_limit
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": list(k.scopes),
        "created_at": ts(k.created_at),
        "last_used_at": opt_ts(k.last_used_at),
        "revoked_at": opt_ts(k.revoked_at),
        "expires_at": opt_ts(k.expires_at),
        "rate_limit": None
        if rl is None
        else RateLimitOut(capacity=rl.capacity, refill_per_second=rl.refill_per_second),
    }


def key_out(k: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(**_key_fields(k))


def key_with_secret(k: ApiKey, secret: str) -> ApiKeyWithSecret:
    return ApiKeyWithSecret(**_key_fields(k), secret=secret)


def require_strict(raw: bytes, kind: type[Struct]) -> None:
    """Refuse a body that only Litestar's lenient conversion accepted (``0`` for ``false``, ``"5"`` for ``5``).

    Litestar converts request data with ``strict=False`` (query strings need it); a JSON body must
    match its documented types exactly, so ``{"playing": 0}`` is a 400, not a paused source.
    """
    try:
        msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        found = re.search(r"at `\$\.([^`\[]+)", str(exc))
        raise InvalidRequest(str(exc).split(" - at ", 1)[0] + ".", param=found.group(1) if found else None) from None
    except msgspec.DecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None


def changes(body: Struct) -> dict[str, Any]:
    """The fields a PATCH body actually carries, by wire (camelCase) name; ``null`` kept.

    A nested body (a studio's ``program``) becomes a plain mapping with only its given fields.
    """
    info = msgspec.structs.fields(body)
    out: dict[str, Any] = {}
    for f in info:
        value = getattr(body, f.name)
        if value is UNSET:
            continue
        out[f.encode_name] = msgspec.to_builtins(value) if isinstance(value, Struct) else value
    return out
