"""The deployment file's model: YAML, overridden by ``TRAX_*`` environment variables.

``TRAX_SERVER__PORT=8123`` sets ``server.port``; ``PUBLIC_API_WRITE_ENABLED``
(that exact name) sets ``public_api.write_enabled``. Each backend's
``options`` mapping is validated later by that backend's own model. A list
setting takes a JSON list or comma-separated values from the environment
(``TRAX_INGEST__WHIP__HOST_CANDIDATES=10.0.0.1,192.0.2.7``).
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

WRITE_FLAG_ENV = "PUBLIC_API_WRITE_ENABLED"


class ConfigError(Exception):
    """A deployment file (or its environment overrides) that cannot be used; the message says where."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpDoorSettings(_Section):
    """How an HTTP listener (/v1, and the WHIP/WHEP endpoint) admits and times out connections.

    A connection that never finishes its request head, or stalls in its body, holds a file descriptor
    that RTMP, SRT and WHIP need too (one process, one fd limit); these bound how many and for how long.
    """

    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """The whole request head (request line and headers) must arrive within this, counted from the
    connection's opening or the end of the previous response; else the connection is closed."""
    body_idle_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    """A request body that sends nothing for this long is dropped (a slow but moving upload is fine)."""
    keep_alive_timeout_seconds: int = Field(default=5, ge=1, le=300)
    """An idle keep-alive connection is closed after this (uvicorn ``timeout_keep_alive``)."""
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    """Largest request head; a longer one is answered 431 (or 400) and the connection closed."""
    max_connections: int = Field(default=1024, ge=1)
    """Open connections at once on this listener; past it a new connection is closed at once."""
    max_connections_per_address: int = Field(default=64, ge=1)
    """Open connections at once from one client address (IPv6: one /64); past it a new one is closed at once."""
    max_concurrency: int = Field(default=1024, ge=1)
    """uvicorn ``limit_concurrency``: past this many connections or requests in progress, requests get 503."""
    graceful_shutdown_seconds: int = Field(default=10, ge=1, le=600)
    """On SIGTERM, requests still running after this are cancelled (uvicorn ``timeout_graceful_shutdown``)."""
    backlog: int = Field(default=2048, ge=1, le=65535)
    """Connections the kernel queues before they are accepted (``listen`` backlog)."""


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_url: str | None = None
    """Base URL clients use to reach /v1 (for upload URLs); derived from host and port if unset."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    access_log: bool = False
    certfile: Path | None = None
    """PEM certificate (chain) to serve /v1 over HTTPS; needs ``keyfile`` too."""
    keyfile: Path | None = None
    """PEM private key of ``certfile``."""
    http: HttpDoorSettings = Field(default_factory=HttpDoorSettings)
    """Connection admission and timeouts of the /v1 listener."""

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("certfile and keyfile go together: set both or neither")
        return self


class BackendChoice(_Section):
    backend: str = "memory"
    options: dict[str, Any] = Field(default_factory=dict)


class LimitsSettings(BackendChoice):
    backend: str = "memory"
    route_costs: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    """Cost in tokens per operation id (default 1), e.g. ``{createUpload: 5}``."""
    meta_capacity: int = Field(default=60, ge=1)
    meta_refill_per_second: float = Field(default=10.0, gt=0)
    account_capacity: int | None = Field(default=None, ge=1)
    """A bucket per account on top of the per-key ones, shared by all its keys; off when unset.

    Per-key buckets alone let an account multiply its quota by creating keys."""
    account_refill_per_second: float = Field(default=100.0, gt=0)
    """Refill rate of the per-account bucket (used only with ``account_capacity``)."""
    auth_failure_capacity: int = Field(default=20, ge=1)
    """Failed authentications a client address may make in a burst before it gets 429 without a lookup."""
    auth_failure_refill_per_second: float = Field(default=0.2, gt=0)
    """Failed attempts an address earns back per second (0.2: one guess every 5 s once the burst is spent)."""


class PublicApiSettings(_Section):
    write_enabled: bool = False
    keys_writable_when_disabled: bool = False
    """Let a key manage its own account's keys while writes are off."""
    session_tokens_enabled: bool = True
    """Serve ``POST .../session-tokens`` (self-serve media tokens)."""


class SecuritySettings(_Section):
    secret_key: SecretStr | None = None
    """Server secret for key hashes, cursors and upload URLs; else read (or created) at ``secret_key_file``."""
    secret_key_file: Path = Path("var/secret.key")


class MediaSettings(_Section):
    max_upload_bytes: int = Field(default=5 * 1024**3, ge=1)
    allowed_content_types: list[str] = Field(
        default_factory=lambda: [
            "video/mp4",
            "video/webm",
            "video/quicktime",
            "audio/mpeg",
            "audio/aac",
            "audio/ogg",
            "audio/wav",
            "image/png",
            "image/jpeg",
            "application/octet-stream",
        ]
    )
    upload_ttl_seconds: int = Field(default=3600, ge=60)
    stale_part_seconds: float = Field(default=3600.0, ge=60)
    """A blob store's partial file (an upload or recording being written) untouched this long was left by
    a killed process and is removed; a write running in this process is never removed."""
    part_sweep_interval_seconds: float = Field(default=600.0, gt=0)
    """How often stale partial files are looked for (also once at start-up)."""


class TokenAudiences(_Section):
    """The ``aud`` names of the three media-token audiences (docs/ingest.md)."""

    ingest: str = "trax-ingest"
    talk: str = "trax-talk"
    read: str = "trax-read"


class TrustedIssuer(_Section):
    """Another service whose media tokens this deployment accepts (e.g. TRaX's own studio API)."""

    issuer: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    audiences: TokenAudiences = Field(default_factory=TokenAudiences)
    refresh_seconds: float = Field(default=300.0, ge=1)
    require_low_s: bool = False
    """Refuse its tokens whose ES256 signature is in high-S form (the malleable twin). Off by default:
    common JWT libraries do not normalise S, so half of their tokens would be refused."""


class MediaTokenSettings(_Section):
    issuer: str = "trax"
    audiences: TokenAudiences = Field(default_factory=TokenAudiences)
    default_ttl_seconds: int = Field(default=3600, ge=1)
    read_ttl_seconds: int = Field(default=300, ge=1)
    """Default lifetime of a WebRTC playback (``read`` audience) token: short by design."""
    max_ttl_seconds: int = Field(default=7 * 86400, ge=1)
    key_file: Path | None = None
    """PEM file of EC P-256 private keys (last one signs); unset keeps keys in storage."""
    leeway_seconds: int = Field(default=5, ge=0, le=300)
    trusted: list[TrustedIssuer] = Field(default_factory=list)


class IngestSettings(_Section):
    """``host`` is where listeners bind; every other key is one transport's options."""

    model_config = ConfigDict(extra="allow")
    host: str = "127.0.0.1"
    public_host: str | None = None
    """Host name put into ready-to-paste URLs; ``host`` if unset."""
    tokens: MediaTokenSettings = Field(default_factory=MediaTokenSettings)
    idle_timeout_seconds: float = Field(default=5.0, gt=0)
    """A publisher that sends nothing this long is ended (instead of ~30 s of ICE consent)."""
    max_readers_per_path: int = Field(default=200, ge=1)
    publisher_takeover: bool = True
    """A new authorised publisher (RTMP, SRT, WHIP) on a path that has one replaces it (as MediaMTX does), so a
    crashed encoder gets its path back at once; off: it is refused (RTMP BadName, SRT 1409, WHIP 409)."""
    keyframe_warning_seconds: float = Field(default=10.0, gt=0)
    """A publisher whose video has sent no keyframe at all this long after it opened gets the status reason
    ``no_keyframes`` (status stays ``live``)."""


class BroadcastSettings(_Section):
    """The studios' programs, egress and recordings (docs/broadcast.md)."""

    enabled: bool = True
    """Off: go-live only records the state (no program, nothing pushed), as before broadcasting existed."""
    recordings_dir: Path = Path("var/recordings")
    """Where recordings are written while live (fragmented MP4) before they move to the blob store."""
    media_cache_dir: Path = Path("var/media-cache")
    """Local copies of the assets media sources and slates play (blob stores may be remote)."""
    egress_queue_packets: int = Field(default=600, ge=16, le=100_000)
    """Per destination: packets waiting for a slow receiver before it skips to the next keyframe."""
    reconnect_min_seconds: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_seconds: float = Field(default=30.0, gt=0, le=600)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    stop_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """How long go-offline waits for each egress and the recording to finish cleanly."""
    tls_verify: bool = True
    """Check the certificates of rtmps:// receivers (off only for test receivers with self-signed ones)."""


class PluginsSettings(_Section):
    paths: list[Path] = Field(default_factory=list)
    """One-file plugins to load (``.py`` files)."""
    modules: list[str] = Field(default_factory=list)
    """Importable modules to register as plugins."""
    disabled: list[str] = Field(default_factory=list)
    """Entry-point or built-in plugin names to skip."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRAX_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: BackendChoice = Field(default_factory=BackendChoice)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    blobs: BackendChoice = Field(default_factory=BackendChoice)
    events: BackendChoice = Field(default_factory=BackendChoice)
    public_api: PublicApiSettings = Field(default_factory=PublicApiSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    broadcast: BroadcastSettings = Field(default_factory=BroadcastSettings)
    platforms: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    """Enabled platforms by name, each with its options."""
    plugins: PluginsSettings = Field(default_factory=PluginsSettings)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # earlier wins: the exact-name write flag, TRAX_* variables, then the YAML (passed as init kwargs)
        return (_WriteFlagSource(settings_cls), _EnvSource(settings_cls), init_settings)


def parse_list(value: str) -> Any:
    """An environment variable's list: a JSON list, else comma-separated values (blanks dropped).

    Anything JSON that is not a list is returned as parsed, so the field's own validation says what is wrong.
    """
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            return value  # the model then reports "a valid list" for the variable
    return [part.strip() for part in text.split(",") if part.strip()]


class _EnvSource(EnvSettingsSource):
    """``TRAX_*`` variables, where a list field also takes comma-separated values (pydantic-settings wants JSON)."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if isinstance(value, str) and _is_list(field.annotation) and not value.lstrip().startswith("["):
            return parse_list(value)
        return super().decode_complex_value(field_name, field, value)


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    if origin in (Union, types.UnionType):
        return any(_is_list(a) for a in get_args(annotation) if a is not type(None))
    if origin is Annotated:
        return _is_list(get_args(annotation)[0])
    return False


def _lists_from_env(model: type[BaseModel], options: dict[str, Any]) -> dict[str, Any]:
    """Options of a transport or backend arrive from ``TRAX_*`` as strings: a list field's string becomes a list.

    (Those options are free-form in :class:`Settings`, so pydantic-settings cannot know the field is a list.)
    """
    out = dict(options)
    for name, info in model.model_fields.items():
        key = info.alias or name
        if isinstance(out.get(key), str) and _is_list(info.annotation):
            out[key] = parse_list(out[key])
    return out


class _WriteFlagSource(PydanticBaseSettingsSource):
    """``PUBLIC_API_WRITE_ENABLED`` by that exact name (the TRaX contract), no prefix."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        value = os.environ.get(WRITE_FLAG_ENV)
        return {} if value is None else {"public_api": {"write_enabled": value}}


def _env_source(loc: tuple[str | int, ...]) -> str | None:
    """The environment variable that set the value at ``loc``, if one did (so the message points there)."""
    if tuple(loc[:2]) == ("public_api", "write_enabled") and WRITE_FLAG_ENV in os.environ:
        return WRITE_FLAG_ENV
    for depth in range(len(loc), 0, -1):  # TRAX_SERVER__PORT, or a whole-section TRAX_SERVER='{...}'
        name = "TRAX_" + "__".join(str(p) for p in loc[:depth]).upper()
        if name in os.environ:
            return name
    return None


def _format_error(err: ValidationError, origin: str) -> str:
    lines = [f"{origin}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        env = _env_source(e["loc"])
        lines.append(f"  {loc}: {msg}" + (f" (set by environment variable {env})" if env else ""))
    return "\n".join(lines)


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc.__class__.__name__}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections")
    odd = [k for k in data if not isinstance(k, str)]
    if odd:
        raise ConfigError(f"{p}: section names must be strings, not {odd[0]!r}")
    return data


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load a deployment file (or just the environment and defaults when ``path`` is None).

    Raises :class:`ConfigError` with each bad field's dotted path.
    """
    data = read_yaml(path) if path is not None else {}
    _deep_merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, str(path or "settings"))) from None


def validate_options(model: type[BaseModel], options: dict[str, Any], where: str) -> BaseModel:
    """Validate one backend's ``options`` with its own model; errors name ``where.<field>``."""
    try:
        return model.model_validate(_lists_from_env(model, options))
    except ValidationError as exc:
        lines = [f"{where}: invalid options"]
        for e in exc.errors():
            loc = ".".join([where, *(str(p) for p in e["loc"])])
            lines.append(f"  {loc}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}")
        raise ConfigError("\n".join(lines)) from None


def _deep_merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _deep_merge(into[k], v)
        else:
            into[k] = v
