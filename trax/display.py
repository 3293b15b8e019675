"""Notebook rendering: compact escaped HTML tables and readable text for SDK objects.

Every public function here is total: it never raises (a repr that raises hides the
real error in a notebook), escapes everything it puts into HTML, masks secrets and
caps the size of what it shows.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

MAX_ROWS = 50
"""Rows shown for a list before it is cut (with a line saying how many more)."""
MAX_TEXT = 120
"""Characters shown of one value before it is cut."""
MASK = "•••••"

_STATUS_COLOURS = {
    "live": "#1a7f37",
    "ready": "#1a7f37",
    "active": "#1a7f37",
    "ok": "#1a7f37",
    "starting": "#9a6700",
    "connecting": "#9a6700",
    "stopping": "#9a6700",
    "pending": "#9a6700",
    "error": "#cf222e",
    "failed": "#cf222e",
    "revoked": "#cf222e",
    "expired": "#cf222e",
}
_STYLE = "border-collapse:collapse;font-size:12px;margin:2px 0"
_CELL = "padding:1px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd"


def mask(secret: str | None, *, keep: int = 0) -> str:
    """``secret`` hidden, optionally keeping its first ``keep`` characters (a public key prefix)."""
    if not secret:
        return ""
    keep = max(0, min(keep, len(secret) // 2))
    return secret[:keep] + "…" if keep else MASK


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each secret replaced by a mask (URLs embed tokens)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    return text


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(value: Any) -> str:
    """One value as short readable text."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in list(value)[:MAX_ROWS]]
        more = len(value) - len(items)
        return ", ".join(items) + (f", … {more} more" if more > 0 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k}={plain(v)}" for k, v in list(value.items())[:MAX_ROWS])
    return str(value)


def _cell(text: str, key: str = "") -> str:
    short = html.escape(shorten(text))
    colour = _STATUS_COLOURS.get(text) if key.endswith("status") else None
    if colour:
        return f'<span style="color:{colour};font-weight:600">{short}</span>'
    return short


def html_record(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """One object as a two-column table; values must already be masked."""
    if len(rows) > MAX_ROWS:
        rows = [*rows[: MAX_ROWS - 1], ("…", f"{len(rows) - MAX_ROWS + 1} more rows")]
    body = "".join(
        f'<tr><th style="{_CELL};color:#57606a;font-weight:500">{html.escape(k)}</th>'
        f'<td style="{_CELL}">{_cell(v, k)}</td></tr>'
        for k, v in rows
    )
    caption = f'<caption style="text-align:left;font-weight:600">{html.escape(title)}</caption>'
    return f'<table style="{_STYLE}">{caption}{body}</table>'


def html_rows(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, more: str = "") -> str:
    """Many objects as one table, at most :data:`MAX_ROWS` rows; ``more`` is a footer line."""
    head = "".join(f'<th style="{_CELL}">{html.escape(c)}</th>' for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f'<td style="{_CELL}">{_cell(v, c)}</td>' for c, v in zip(columns, row, strict=False))
        + "</tr>"
        for row in rows[:MAX_ROWS]
    )
    if len(rows) > MAX_ROWS and not more:
        more = f"… {len(rows) - MAX_ROWS} more"
    foot = (
        f'<tr><td colspan="{len(columns)}" style="{_CELL};color:#57606a">{html.escape(more)}</td></tr>' if more else ""
    )
    caption = f'<caption style="text-align:left;font-weight:600">{html.escape(title)}</caption>'
    return f'<table style="{_STYLE}">{caption}<tr>{head}</tr>{body}{foot}</table>'


def text_rows(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, more: str = "") -> str:
    """The same table as aligned plain text."""
    shown = [[shorten(v, 60) for v in row] for row in rows[:MAX_ROWS]]
    widths = [max([len(c), *(len(r[i]) for r in shown if i < len(r))]) for i, c in enumerate(columns)]
    lines = [title, "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip() for row in shown]
    if len(rows) > MAX_ROWS and not more:
        more = f"… {len(rows) - MAX_ROWS} more"
    if more:
        lines.append(more)
    return "\n".join(lines)


def safe(render: Any, fallback: str) -> str:
    """``render()``, or ``fallback`` if it raises: a repr must never raise."""
    try:
        out = render()
        return out if isinstance(out, str) else fallback
    except Exception as exc:
        return f"{fallback} (display failed: {type(exc).__name__})"


_LEVELS = {"idle": 0, "error": 0, "connecting": 1, "live": 2}


def plot_timeline(series: dict[str, list[tuple[datetime, str]]], *, title: str = "", ax: Any = None) -> Any:
    """A step plot of statuses over time, one line per object (matplotlib, imported here only)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.2))
    starts = [points[0][0] for points in series.values() if points]
    t0 = min(starts) if starts else None
    for name, points in list(series.items())[:10]:
        if not points or t0 is None:
            continue
        xs = [(t - t0).total_seconds() for t, _ in points]
        ys = [_LEVELS.get(s, 0) for _, s in points]
        ax.step(xs, ys, where="post", label=shorten(name, 30))
    ax.set_yticks([0, 1, 2], ["idle/error", "connecting", "live"])
    ax.set_ylim(-0.3, 2.3)
    ax.set_title(title)
    ax.set_xlabel("seconds")
    if series:
        ax.legend(loc="upper left", fontsize="small")
    return ax
