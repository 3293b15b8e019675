"""Which characters a stored string may hold: the one rule for names and identifiers, and a looser one for prose.

Names (studios, sources, destinations, keys, assets, accounts, chat authors, linked accounts) and
identifier-like values (URLs, stream keys, platforms) are shown in dashboards, logs and terminals and
passed on to other systems. Control characters there forge log lines or terminal escapes (ESC, CSI),
NUL truncates them in C code and PostgreSQL refuses it, and Unicode bidi controls make a name *display*
as something other than what it is ("Trojan Source"). Prose (descriptions, chat) keeps newlines, tabs
and bidi controls, which right-to-left writing needs, but not NUL or the other controls.
"""

from __future__ import annotations

import re

from trax.domain.errors import InvalidRequest

# the character classes as regex source, so the /v1 schema can state the same rule as a ``pattern``
_NAME_UNSAFE_CLASS = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""C0, DEL, C1 and the bidi controls (ALM, LRM, RLM, LRE..RLO, LRI..PDI)."""
_PROSE_UNSAFE_CLASS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
"""Controls other than tab, newline and carriage return."""

NAME_PATTERN = f"^[^{_NAME_UNSAFE_CLASS}]*$"
"""A whole name that passes :func:`check_name` (JSON Schema / ECMA and Python syntax alike)."""
PROSE_PATTERN = f"^[^{_PROSE_UNSAFE_CLASS}]*$"
"""A whole text that passes :func:`check_prose`."""
RULE_MESSAGES = {
    NAME_PATTERN: "Must not contain control or bidirectional-control characters.",
    PROSE_PATTERN: "Must not contain control characters other than tab and newline.",
}
"""What a failed ``pattern`` of either rule means, for the error envelope."""

_NAME_UNSAFE = re.compile(f"[{_NAME_UNSAFE_CLASS}]")
_PROSE_UNSAFE = re.compile(f"[{_PROSE_UNSAFE_CLASS}]")


def check_name(value: str, param: str) -> str:
    """``value`` when it has no control or bidi control character, else :class:`InvalidRequest` naming ``param``."""
    found = _NAME_UNSAFE.search(value)
    if found is not None:
        raise InvalidRequest(
            f"{param} must not contain control or bidirectional-control characters (U+{ord(found.group()):04X}).",
            param=param,
        )
    return value


def check_prose(value: str, param: str) -> str:
    """``value`` when its only control characters are tab, newline and carriage return."""
    found = _PROSE_UNSAFE.search(value)
    if found is not None:
        raise InvalidRequest(f"{param} must not contain control characters (U+{ord(found.group()):04X}).", param=param)
    return value
