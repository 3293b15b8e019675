"""The SDK's object model: what ``/v1`` returns, as Python objects with actions.

The same classes serve the remote clients and the in-process platform. An
object keeps a reference to the API that made it, so ``studio.go_live()`` or
``studio.sources.create(kind="rtmp")`` goes back through the same client. What
an action returns depends on that client: a coroutine for :class:`AsyncClient`,
a :class:`~trax.client.bridge.Call` for :class:`Client` and ``trax.connect``.

Secrets (an API key's ``secret``, a media ``token``, signed upload URLs) are
plain attributes for the code that needs them but are masked in every repr.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from trax import display

if TYPE_CHECKING:
    from trax.client.api import Api, Chat, Destinations, Sources

M = TypeVar("M", bound="Model")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _parse_time(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def wire_time(value: datetime | None) -> str | None:
    """RFC 3339 UTC with milliseconds and ``Z``, the wire format of every timestamp."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(kw_only=True, eq=False, repr=False)
class Model:
    """Base of every SDK object: built from the wire form, rendered safely."""

    TITLE: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[str, ...]] = ("id",)
    """Attributes shown as columns when many objects are listed."""
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    extra: dict[str, Any] = field(default_factory=dict)
    """Wire fields this SDK version does not know (``/v1`` may add fields)."""

    def __post_init__(self) -> None:
        self._api: Api | None = None

    @classmethod
    def from_wire(cls: type[M], data: Mapping[str, Any], api: Api | None = None) -> M:
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        kwargs: dict[str, Any] = {}
        known: set[str] = set()
        for f in fields(cls):
            if f.name == "extra":
                continue
            wire = f.metadata.get("wire", _camel(f.name))
            known.add(wire)
            if wire in data:
                value = data[wire]
                convert = f.metadata.get("convert")
                if convert is not None and value is not None:
                    value = convert(value)
                elif f.name.endswith("_at") or f.name.endswith("_since"):
                    value = _parse_time(value)
                kwargs[f.name] = value
        obj = cls(**kwargs, extra={k: v for k, v in data.items() if k not in known})
        obj._api = api
        return obj

    def _bound(self) -> Api:
        if self._api is None:
            raise RuntimeError(f"This {type(self).__name__} is not attached to a client.")
        return self._api

    # --- display --------------------------------------------------------------

    def _secrets(self) -> list[str | None]:
        return [getattr(self, name, None) for name in self.SECRET_FIELDS]

    def _shown(self, name: str) -> str:
        """One attribute as masked display text."""
        value = getattr(self, name, None)
        if name in self.SECRET_FIELDS:
            return display.mask(value)
        return display.scrub(display.plain(value), self._secrets())

    def _rows(self) -> list[tuple[str, str]]:
        out = []
        for f in fields(self):
            if f.name == "extra" or f.metadata.get("hidden"):
                continue
            value = getattr(self, f.name)
            if value is None or value == {} or value == []:
                continue
            out.append((_camel(f.name), self._shown(f.name)))
        return out

    def _title(self) -> str:
        return self.TITLE or type(self).__name__

    def _repr_html_(self) -> str:
        return display.safe(lambda: display.html_record(self._title(), self._rows()), html_fallback(self))

    def __repr__(self) -> str:
        def render() -> str:
            parts = ", ".join(f"{k}={display.shorten(v)!r}" for k, v in self._rows()[:8])
            return f"{type(self).__name__}({parts})"

        return display.safe(render, f"<{type(self).__name__}>")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self))

    __hash__ = None  # type: ignore[assignment]


def html_fallback(obj: object) -> str:
    return f"&lt;{type(obj).__name__}&gt;"


def _state_list(items: Any) -> tuple[State, ...]:
    return tuple(State.from_wire(i) for i in items if isinstance(i, Mapping))


@dataclass(kw_only=True, eq=False, repr=False)
class State(Model):
    """One source's or destination's state inside a :class:`StreamStatus`."""

    id: str = ""
    status: str = ""
    name: str = ""
    kind: str | None = None
    """Sources: ``srt``, ``rtmp``, ``whip`` or ``media``."""
    reason: str | None = None
    """Sources: why the source is in ``error``."""
    media: dict[str, Any] | None = None
    """Sources, while live: ``{"videoCodec", "width", "height", "fps", "bitrate", "audioCodec", "sampleRate",
    "channels"}`` as the publisher sends them (a field it cannot tell is absent)."""
    error: dict[str, Any] | None = None
    """``{"code", "message"}`` when a destination is in ``error``."""

    @property
    def error_code(self) -> str | None:
        return None if not self.error else str(self.error.get("code"))


@dataclass(kw_only=True, eq=False, repr=False)
class Health(Model):
    TITLE = "trax health"
    status: str = ""
    version: str = ""
    api_version: str = ""


@dataclass(kw_only=True, eq=False, repr=False)
class Studio(Model):
    COLUMNS = ("id", "name", "status", "created_at")
    id: str = ""
    name: str = ""
    description: str | None = None
    status: str = ""
    live_since: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    program: dict[str, Any] = field(default_factory=dict)
    """``layout``, ``sources``, ``output``, ``passthrough``, ``record``, ``slate`` (docs/broadcast.md)."""

    def _title(self) -> str:
        return f"Studio {self.name}"

    def set_program(self, **changes: Any) -> Any:
        """PATCH the program: ``layout="grid"``, ``sources=[cam, clip]`` (objects or ids), ``record=True``,
        ``output={"width": 1280, "video_bitrate": 3_000_000}``; fields left out stay. Returns the studio."""
        if "sources" in changes and changes["sources"] is not None:
            changes["sources"] = [getattr(s, "id", s) for s in changes["sources"]]
        return self.update(program=changes)

    def program_session_token(self, **options: Any) -> Any:
        """A read token and WHEP / SRT / RTMP URLs to watch the program (``ttl_seconds``)."""
        return self._bound().call(
            "POST", f"/v1/studios/{self.id}/program/session-tokens", json=to_wire(options), into=IngestCredentials
        )

    @property
    def sources(self) -> Sources:
        from trax.client.api import Sources

        return Sources(self._bound(), self.id)

    @property
    def destinations(self) -> Destinations:
        from trax.client.api import Destinations

        return Destinations(self._bound(), self.id)

    @property
    def chat(self) -> Chat:
        from trax.client.api import Chat

        return Chat(self._bound(), self.id)

    def go_live(self) -> Any:
        """Put the studio on air; returns its :class:`StreamStatus` (idempotent)."""
        return self._bound().call("POST", f"/v1/studios/{self.id}/go-live", into=StreamStatus)

    def go_offline(self) -> Any:
        return self._bound().call("POST", f"/v1/studios/{self.id}/go-offline", into=StreamStatus)

    def stream_status(self) -> Any:
        return self._bound().call("GET", f"/v1/studios/{self.id}/stream-status", into=StreamStatus)

    def update(self, **changes: Any) -> Any:
        """PATCH the given fields (``name``, ``description``, ``program``); returns the updated studio."""
        return self._bound().call("PATCH", f"/v1/studios/{self.id}", json=to_wire(changes), into=Studio)

    def refresh(self) -> Any:
        return self._bound().call("GET", f"/v1/studios/{self.id}", into=Studio)

    def delete(self) -> Any:
        return self._bound().call("DELETE", f"/v1/studios/{self.id}")


@dataclass(kw_only=True, eq=False, repr=False)
class StreamStatus(Model):
    TITLE = "Stream status"
    COLUMNS = ("studio_id", "status", "live_since")
    studio_id: str = ""
    status: str = ""
    live_since: datetime | None = None
    updated_at: datetime | None = None
    sources: tuple[State, ...] = field(default=(), metadata={"convert": _state_list})
    destinations: tuple[State, ...] = field(default=(), metadata={"convert": _state_list})
    program: dict[str, Any] | None = None
    """While on air: ``{"status": "running" | "starting" | "error", "error"?}`` of the program pipeline."""

    @property
    def live_sources(self) -> list[str]:
        return [s.id for s in self.sources if s.status == "live"]

    def _rows(self) -> list[tuple[str, str]]:
        rows = [("studioId", self.studio_id), ("status", self.status)]
        if self.program:
            rows.append(
                (
                    "program",
                    str(self.program.get("status"))
                    + (f" ({self.program['error']})" if self.program.get("error") else ""),
                )
            )
        if self.live_since:
            rows.append(("liveSince", display.plain(self.live_since)))
        cap = display.MAX_ROWS // 2 - 3
        rows += [(f"source {s.id}", s.status) for s in self.sources[:cap]]
        rows += [
            (f"destination {d.id}", d.status + (f" ({d.error_code})" if d.error else ""))
            for d in self.destinations[:cap]
        ]
        hidden = max(0, len(self.sources) - cap) + max(0, len(self.destinations) - cap)
        if hidden:
            rows.append(("…", f"{hidden} more"))
        return rows


@dataclass(kw_only=True, eq=False, repr=False)
class Source(Model):
    COLUMNS = ("id", "name", "kind", "status")
    id: str = ""
    studio_id: str = ""
    name: str = ""
    kind: str = ""
    status: str = ""
    ingest: dict[str, Any] = field(default_factory=dict)
    media_asset_id: str | None = None
    loop: bool | None = None
    playing: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def path(self) -> str:
        """The stream path (``inputs/<kind>-<uuid>``) media tokens are minted for."""
        return str(self.ingest.get("path", ""))

    def _path(self) -> str:
        return f"/v1/studios/{self.studio_id}/sources/{self.id}"

    def update(self, **changes: Any) -> Any:
        return self._bound().call("PATCH", self._path(), json=to_wire(changes), into=Source)

    def refresh(self) -> Any:
        return self._bound().call("GET", self._path(), into=Source)

    def delete(self) -> Any:
        return self._bound().call("DELETE", self._path())

    def session_token(self, **options: Any) -> Any:
        """Self-serve ingest credentials for this source (``POST .../session-tokens``)."""
        return self._bound().call(
            "POST", self._path() + "/session-tokens", json=to_wire(options), into=IngestCredentials
        )

    def stream_key(self) -> Any:
        """Create or rotate this source's static stream key (``POST .../stream-key``): shown once.

        The previous key stops at once: new connections with it are refused and sessions it opened end.
        """
        return self._bound().call("POST", self._path() + "/stream-key", into=SourceStreamKey)


def _hide_token_in(url: str, token: str | None) -> str:
    url = display.scrub(url, [token])
    parts = urlsplit(url)
    if parts.query:  # a signed query string is a credential too
        return url.split("?", 1)[0] + "?" + display.MASK
    return url


@dataclass(kw_only=True, eq=False, repr=False)
class IngestCredentials(Model):
    """A media token and ready-to-paste encoder URLs; the token is masked when shown."""

    TITLE = "Ingest credentials"
    SECRET_FIELDS = ("token",)
    token: str = ""
    expires_at: datetime | None = None
    action: str = ""
    path: str = ""
    urls: dict[str, str] = field(default_factory=dict)
    obs: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per RTMP(S) transport, ``{"server", "streamKey"}`` for OBS-style encoders (the key holds the credential)."""

    def server(self, protocol: str = "rtmp") -> str:
        """OBS "Server" for ``protocol`` (``rtmp`` or ``rtmps``)."""
        return self.obs[protocol]["server"]

    def stream_key(self, protocol: str = "rtmp") -> str:
        """OBS "Stream Key" for ``protocol``: secret, like the token it carries."""
        return self.obs[protocol]["streamKey"]

    def _rows(self) -> list[tuple[str, str]]:
        rows = [
            ("token", display.mask(self.token)),
            ("action", self.action),
            ("path", self.path),
            ("expiresAt", display.plain(self.expires_at)),
        ]
        rows += [(f"url {k}", _hide_token_in(str(v), self.token)) for k, v in sorted(self.urls.items())]
        rows += [(f"{k} server", str(v.get("server"))) for k, v in sorted(self.obs.items())]
        return rows


@dataclass(kw_only=True, eq=False, repr=False)
class SourceStreamKey(Model):
    """A source's static stream key, as ``POST .../stream-key`` answers it once; masked when shown."""

    TITLE = "Stream key"
    SECRET_FIELDS = ("stream_key",)
    source_id: str = ""
    path: str = ""
    stream_key: str = ""
    urls: dict[str, str] = field(default_factory=dict)
    obs: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per RTMP(S) transport, ``{"server", "streamKey"}``: paste into OBS's Server and Stream Key."""

    def _rows(self) -> list[tuple[str, str]]:
        rows = [("sourceId", self.source_id), ("path", self.path), ("streamKey", display.mask(self.stream_key))]
        rows += [(f"url {k}", _hide_token_in(str(v), self.stream_key)) for k, v in sorted(self.urls.items())]
        rows += [(f"{k} server", str(v.get("server"))) for k, v in sorted(self.obs.items())]
        return rows


@dataclass(kw_only=True, eq=False, repr=False)
class Destination(Model):
    COLUMNS = ("id", "name", "platform", "status", "enabled")
    id: str = ""
    studio_id: str = ""
    name: str = ""
    platform: str = ""
    connection_id: str | None = None
    enabled: bool = True
    status: str = ""
    error: dict[str, Any] | None = None
    """``{"code", "message"}`` while ``status`` is ``error``."""
    rtmp_url: str | None = None
    stream_key_hint: str | None = None
    srt_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def _path(self) -> str:
        return f"/v1/studios/{self.studio_id}/destinations/{self.id}"

    def _shown(self, name: str) -> str:
        if name == "rtmp_url" and self.rtmp_url:
            return _hide_token_in(self.rtmp_url, None)
        return super()._shown(name)

    def update(self, **changes: Any) -> Any:
        return self._bound().call("PATCH", self._path(), json=to_wire(changes), into=Destination)

    def refresh(self) -> Any:
        return self._bound().call("GET", self._path(), into=Destination)

    def delete(self) -> Any:
        return self._bound().call("DELETE", self._path())


@dataclass(kw_only=True, eq=False, repr=False)
class Connection(Model):
    COLUMNS = ("id", "platform", "display_name", "status")
    id: str = ""
    platform: str = ""
    display_name: str = ""
    external_account_id: str = ""
    status: str = ""
    linked_at: datetime | None = None

    def unlink(self) -> Any:
        return self._bound().call("DELETE", f"/v1/connections/{self.id}")


@dataclass(kw_only=True, eq=False, repr=False)
class ChatMessage(Model):
    TITLE = "Chat message"
    COLUMNS = ("sent_at", "direction", "author_name", "text")
    id: str = ""
    studio_id: str = ""
    text: str = ""
    direction: str = ""
    platform: str = ""
    connection_id: str | None = None
    author: dict[str, Any] = field(default_factory=dict)
    sent_at: datetime | None = None

    @property
    def author_name(self) -> str:
        return str(self.author.get("name", ""))


@dataclass(kw_only=True, eq=False, repr=False)
class MediaAsset(Model):
    TITLE = "Media asset"
    COLUMNS = ("id", "name", "content_type", "size_bytes", "status")
    id: str = ""
    name: str = ""
    content_type: str = ""
    size_bytes: int = 0
    sha256: str | None = None
    status: str = ""
    duration_seconds: float | None = None
    studio_id: str | None = None
    """Recordings: the studio whose program this is."""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def refresh(self) -> Any:
        return self._bound().call("GET", f"/v1/media/{self.id}", into=MediaAsset)

    def delete(self) -> Any:
        return self._bound().call("DELETE", f"/v1/media/{self.id}")


@dataclass(kw_only=True, eq=False, repr=False)
class Upload(Model):
    """Where to send an asset's bytes. ``url`` is a signed credential: masked when shown."""

    SECRET_FIELDS = ("url",)
    id: str = ""
    asset_id: str = ""
    method: str = "PUT"
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None
    max_bytes: int = 0

    def _shown(self, name: str) -> str:
        if name == "url":
            return _hide_token_in(self.url, None)
        if name == "headers":
            return ", ".join(f"{k}={display.MASK}" for k in self.headers)
        return super()._shown(name)


@dataclass(kw_only=True, eq=False, repr=False)
class ApiKey(Model):
    """An API key. ``secret`` is set only on the object create/rotate returned, and never shown."""

    TITLE = "API key"
    COLUMNS = ("id", "name", "prefix", "scopes", "last_used_at", "revoked_at")
    SECRET_FIELDS = ("secret",)
    id: str = ""
    name: str = ""
    prefix: str = ""
    scopes: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    rate_limit: dict[str, Any] | None = None
    """This key's own bucket (``capacity``, ``refillPerSecond``), if it overrides the deployment's."""
    secret: str | None = field(default=None, metadata={"hidden": True})

    def _rows(self) -> list[tuple[str, str]]:
        rows = super()._rows()
        if self.secret:
            rows.append(("secret", display.mask(self.secret, keep=len(self.prefix)) + " (shown once: read .secret)"))
        return rows

    def revoke(self) -> Any:
        return self._bound().call("DELETE", f"/v1/keys/{self.id}")

    def rotate(self, *, grace_period_seconds: int | None = None) -> Any:
        body = {} if grace_period_seconds is None else {"gracePeriodSeconds": grace_period_seconds}
        return self._bound().call("POST", f"/v1/keys/{self.id}/rotate", json=body, into=ApiKey)


def to_wire(values: Mapping[str, Any]) -> dict[str, Any]:
    """Python keyword arguments as a ``/v1`` body: camelCase keys, RFC 3339 times."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, Mapping):
            v = to_wire(v)
        out[_camel(k)] = wire_time(v) if isinstance(v, datetime) else v
    return out


def render_many(title: str, items: list[Model], more: str = "") -> tuple[str, str]:
    """(HTML, text) of a list of objects of one kind."""
    columns: tuple[str, ...] = items[0].COLUMNS if items else ("id",)
    rows = [[item._shown(c) if hasattr(item, c) else "" for c in columns] for item in items]
    heads = [_camel(c) for c in columns]
    return display.html_rows(title, heads, rows, more=more), display.text_rows(title, heads, rows, more=more)


Wrap = Callable[[Mapping[str, Any]], Model]
