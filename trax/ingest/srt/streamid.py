"""The SRT streamid: which path, which action, which credential (docs/ingest.md, SRT).

Three forms are accepted, parsed from the raw bytes the caller sent (never
URL-decoded):

* ``<action>:<path>:trax:<jwt>`` -- a session token;
* ``<action>:<path>:<key>:<key>`` -- a static stream key (user and password equal);
* ``#!::r=<path>,m=publish,s=<jwt>`` -- SRT's access-control syntax, where ``m``
  is ``publish`` or ``request`` (read; the default), ``s`` the session token, and
  ``u=<key>,s=<key>`` a stream key.

``action`` is ``publish`` or ``read``. A streamid longer than 512 bytes, one
that is not printable ASCII, or one holding ``%`` (percent-encoding: the
caller's URL was escaped and must be sent raw) is refused. Every refusal is a
:class:`StreamIdError` carrying the SRT rejection code and a message that never
contains the credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from trax.ingest.srt.libsrt import REJX_BAD_MODE, REJX_BAD_REQUEST, REJX_UNAUTHORIZED

MAX_STREAMID_BYTES = 512
TOKEN_USER = "trax"

Action = Literal["publish", "read"]

_ACTIONS: dict[str, Action] = {"publish": "publish", "read": "read"}
_AC_MODES: dict[str, Action] = {"publish": "publish", "request": "read"}
_AC_PREFIX = "#!::"


class StreamIdError(ValueError):
    """A refused streamid: ``code`` is the SRT rejection reason, ``message`` is safe to log."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StreamId:
    action: Action
    path: str
    token: str | None = field(default=None, repr=False)
    stream_key: str | None = field(default=None, repr=False)

    @property
    def credential_kind(self) -> Literal["token", "stream_key"]:
        return "token" if self.token is not None else "stream_key"

    def __repr__(self) -> str:
        return f"StreamId(action={self.action!r}, path={self.path!r}, credential={self.credential_kind})"


def parse_streamid(raw: bytes | None) -> StreamId:
    """Parse the streamid libsrt saw in the handshake; raises :class:`StreamIdError`."""
    if not raw:
        raise StreamIdError(REJX_BAD_REQUEST, "no streamid: expected <action>:<path>:trax:<token>")
    if len(raw) > MAX_STREAMID_BYTES:
        raise StreamIdError(REJX_BAD_REQUEST, f"streamid longer than {MAX_STREAMID_BYTES} bytes")
    if b"%" in raw:  # an escaped URL: "%23" would otherwise mean "#" to one peer and "%23" to another
        raise StreamIdError(REJX_BAD_REQUEST, "streamid is percent-encoded; send it raw (not URL-encoded)")
    if not all(0x21 <= b <= 0x7E for b in raw):
        raise StreamIdError(REJX_BAD_REQUEST, "streamid must be printable ASCII without spaces")
    text = raw.decode("ascii")
    if text.startswith(_AC_PREFIX):
        return _parse_access_control(text[len(_AC_PREFIX) :])
    return _parse_colon_form(text)


def _parse_colon_form(text: str) -> StreamId:
    parts = text.split(":")
    if len(parts) != 4:
        raise StreamIdError(
            REJX_BAD_REQUEST, "streamid must be <action>:<path>:trax:<token> or <action>:<path>:<key>:<key>"
        )
    action_text, path, user, secret = parts
    action = _ACTIONS.get(action_text)
    if action is None:
        raise StreamIdError(REJX_BAD_MODE, "streamid action must be 'publish' or 'read'")
    return _credential(action, path, user, secret)


def _parse_access_control(body: str) -> StreamId:
    values: dict[str, str] = {}
    for item in body.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StreamIdError(REJX_BAD_REQUEST, "access-control streamid must be #!::key=value,...")
        if key in values:
            raise StreamIdError(REJX_BAD_REQUEST, f"access-control streamid repeats key {key!r}")
        values[key] = value
    mode = values.get("m", "request")
    action = _AC_MODES.get(mode)
    if action is None:
        raise StreamIdError(REJX_BAD_MODE, "access-control mode m must be 'publish' or 'request'")
    if "s" not in values:
        raise StreamIdError(REJX_UNAUTHORIZED, "access-control streamid carries no credential (s=<token>)")
    return _credential(action, values.get("r", ""), values.get("u", TOKEN_USER), values["s"])


def _credential(action: Action, path: str, user: str, secret: str) -> StreamId:
    if not path:
        raise StreamIdError(REJX_BAD_REQUEST, "streamid names no path")
    if not secret:
        raise StreamIdError(REJX_UNAUTHORIZED, "streamid carries an empty credential")
    if user == TOKEN_USER:
        return StreamId(action=action, path=path, token=secret)
    if user != secret:
        raise StreamIdError(REJX_UNAUTHORIZED, "a stream key goes in both user and password: <key>:<key>")
    return StreamId(action=action, path=path, stream_key=secret)
