"""Ready-to-paste ingest URLs for a path and a credential, in the forms of docs/ingest.md.

Ports and schemes come from the deployment's ``ingest.<transport>`` options;
a transport object may override its own URL by offering
``ingest_urls(path, action, token) -> dict[str, str]``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote

from trax.settings import IngestSettings

log = logging.getLogger(__name__)

SRT_MAX_STREAMID = 512
DEFAULT_PORTS = {"srt": 8890, "rtmp": 1935, "rtmps": 1936, "whip": 8889}
# Which audience role each protocol's listener accepts (docs/ingest.md's table).
ROLE_OF_PROTOCOL = {"srt": "ingest", "rtmp": "ingest", "rtmps": "ingest", "whip": "talk", "whep": "read"}


def _port(options: Mapping[str, Any], key: str, default: int) -> int:
    try:
        return int(options.get(key, default))
    except (TypeError, ValueError):
        return default


def _enabled(extra: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The transport's options when it is turned on."""
    options = extra.get(name)
    if isinstance(options, Mapping) and str(options.get("enabled", False)).lower() in ("true", "1", "yes"):
        return options
    return None


def _host(ingest: IngestSettings) -> str:
    host = ingest.public_host or ingest.host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def ingest_urls(
    ingest: IngestSettings,
    path: str,
    action: str,
    token: str,
    roles: Collection[str],
    overrides: Mapping[str, Any] | None = None,
    *,
    user: str = "trax",
) -> dict[str, str]:
    """One URL per enabled protocol whose audience the token carries.

    ``user`` is ``trax`` for a media token; a static stream key goes as both user and password
    (``user=token``), the form docs/srt.md and docs/rtmp.md give for keys.
    """
    extra: Mapping[str, Any] = ingest.model_extra or {}
    host = _host(ingest)
    urls: dict[str, str] = {}
    wanted = {p for p, role in ROLE_OF_PROTOCOL.items() if role in roles}
    for transport in (overrides or {}).values():
        custom = getattr(transport, "ingest_urls", None)
        if callable(custom):
            urls.update({p: u for p, u in custom(path, action, token).items() if p in wanted})
    srt = _enabled(extra, "srt")
    if "srt" in wanted and "srt" not in urls and srt is not None:
        port = _port(srt, "port", DEFAULT_PORTS["srt"])
        # raw streamid: SRT listeners parse it without URL-decoding (docs/ingest.md)
        streamid = f"{action}:{path}:{user}:{token}"
        if len(streamid.encode()) <= SRT_MAX_STREAMID:
            urls["srt"] = f"srt://{host}:{port}?streamid={streamid}"
        else:
            log.warning("no SRT URL for %s: the streamid would exceed %d bytes", path, SRT_MAX_STREAMID)
    rtmp = _enabled(extra, "rtmp")
    if rtmp is not None:
        port = _port(rtmp, "port", DEFAULT_PORTS["rtmp"])
        query = f"?user={quote(user, safe='')}&pass={quote(token, safe='')}"
        if "rtmp" in wanted and "rtmp" not in urls:
            urls["rtmp"] = f"rtmp://{host}:{port}/{path}{query}"
        tls = rtmp.get("rtmps") or rtmp.get("tls")
        tls_port = rtmp.get("rtmps_port") or rtmp.get("tls_port")
        if isinstance(tls, Mapping) and (tls.get("enabled", True) or tls.get("port")):
            tls_port = tls.get("port", tls_port or DEFAULT_PORTS["rtmps"])
        if "rtmps" in wanted and "rtmps" not in urls and tls_port:
            urls["rtmps"] = f"rtmps://{host}:{_port({'p': tls_port}, 'p', DEFAULT_PORTS['rtmps'])}/{path}{query}"
    rtmps = _enabled(extra, "rtmps")
    if "rtmps" in wanted and "rtmps" not in urls and rtmps is not None:
        port = _port(rtmps, "port", DEFAULT_PORTS["rtmps"])
        urls["rtmps"] = f"rtmps://{host}:{port}/{path}?user={quote(user, safe='')}&pass={quote(token, safe='')}"
    whip = _enabled(extra, "whip")
    if whip is not None:
        port = _port(whip, "port", DEFAULT_PORTS["whip"])
        scheme = "https" if whip.get("tls_cert") or whip.get("certfile") else "http"
        base = f"{scheme}://{host}:{port}/{path}"
        if "whip" in wanted and action == "publish" and "whip" not in urls:
            urls["whip"] = f"{base}/whip?access_token={token}"
        if "whep" in wanted and action == "read" and "whep" not in urls:
            urls["whep"] = f"{base}/whep?access_token={token}"
    return urls


RTMP_PROTOCOLS = ("rtmp", "rtmps")


def rtmp_server_and_key(url: str) -> dict[str, str]:
    """Split an RTMP(S) URL the way OBS and most encoders ask for it: ``server`` and ``streamKey``.

    The server is ``scheme://host:port/<app>`` (the path's first segment) and the stream key is the
    rest of the path with its query, so the key carries the credential and pasting the two into
    "Server" and "Stream Key" sends exactly the full URL again (RTMP joins them with a ``/``).
    """
    scheme, rest = url.split("://", 1)
    authority, _, tail = rest.partition("/")
    app, _, key = tail.partition("/")
    return {"server": f"{scheme}://{authority}/{app}", "streamKey": key}


def encoder_fields(urls: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``{"rtmp": {"server", "streamKey"}, "rtmps": {...}}`` for whichever RTMP(S) URLs ``urls`` holds."""
    return {p: rtmp_server_and_key(urls[p]) for p in RTMP_PROTOCOLS if urls.get(p)}


def stream_key_urls(ingest: IngestSettings, path: str, key: str) -> dict[str, str]:
    """Publish URLs that carry a source's static stream key (``<key>:<key>`` where a user is asked)."""
    return ingest_urls(ingest, path, "publish", key, ("ingest", "talk"), user=key)
