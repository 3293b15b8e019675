"""Scrubbing credentials out of text that is about to be shown (error messages from plugins, OS errors)."""

from __future__ import annotations

import re

# scheme://user:password@host -> scheme://***@host ; covers DSNs and URLs a plugin may quote
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_SECRET = re.compile(r"sk_live_[A-Za-z0-9_-]+")


def scrub(text: str) -> str:
    """``text`` without URL user-info or API-key secrets; everything else is kept for the reader."""
    text = _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)
    return _SECRET.sub("sk_live_***", text)
