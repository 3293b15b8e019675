"""Where each source of a composite program goes: pure geometry, no media.

Every rectangle has even coordinates and sizes: the program is YUV 4:2:0, whose
chroma planes are half the size of the picture, so an odd edge would split a
chroma sample between two sources (and the compositor pastes planes by slicing).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from trax.domain.program import Layout

PIP_SCALE = 4
"""Inset pictures are 1/PIP_SCALE of the program's width and height."""
PIP_MARGIN = 1 / 40
"""Gap between insets and the frame's edges, as a fraction of the program's shorter side."""


class Rect(NamedTuple):
    x: int
    y: int
    w: int
    h: int


def _even(value: float) -> int:
    """``value`` rounded down to an even integer (at least 2, the smallest 4:2:0 block)."""
    return max(2, int(value) & ~1)


def _down(value: float) -> int:
    """``value`` rounded down to an even integer (0 allowed): positions."""
    return max(0, int(value) & ~1)


def grid_shape(count: int) -> tuple[int, int]:
    """The smallest (columns, rows) holding ``count`` cells, wider than tall (16:9 programs)."""
    if count <= 0:
        return 0, 0
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    return cols, rows


def slots(layout: Layout, count: int, width: int, height: int) -> list[Rect]:
    """The rectangle of each shown source, in placement order (``count`` sources placed; fewer may show).

    ``single`` shows the first source full frame; ``side_by_side`` the first two in the
    left and right halves; ``grid`` all of them in the smallest grid that holds them;
    ``pip`` the first full frame and the rest as quarter-size insets stacked up from the
    bottom-right corner (as many as fit).
    """
    if count <= 0:
        return []
    width, height = _even(width), _even(height)
    if layout is Layout.SINGLE:
        return [Rect(0, 0, width, height)]
    if layout is Layout.SIDE_BY_SIDE:
        half = _even(width / 2)
        return [Rect(0, 0, half, height), Rect(half, 0, half, height)][: min(count, 2)]
    if layout is Layout.GRID:
        return _grid(count, width, height)
    return _pip(count, width, height)


def _grid(count: int, width: int, height: int) -> list[Rect]:
    cols, rows = grid_shape(count)
    cw, ch = _even(width / cols), _even(height / rows)
    return [Rect((i % cols) * cw, (i // cols) * ch, cw, ch) for i in range(count)]


def _pip(count: int, width: int, height: int) -> list[Rect]:
    rects = [Rect(0, 0, width, height)]
    margin = _even(min(width, height) * PIP_MARGIN)
    iw, ih = _even(width / PIP_SCALE), _even(height / PIP_SCALE)
    x = _down(width - margin - iw)
    y = height - margin - ih
    for _ in range(count - 1):
        if y < margin:  # the column is full: the rest are not shown
            break
        rects.append(Rect(x, _down(y), iw, ih))
        y -= ih + margin
    return rects


def fit(src_w: int, src_h: int, rect: Rect) -> Rect:
    """The largest rectangle of ``src_w``:``src_h`` aspect inside ``rect``, centred (letterbox or pillarbox)."""
    if src_w <= 0 or src_h <= 0:
        return rect
    exact_w, exact_h = float(rect.w), rect.w * src_h / src_w
    if exact_h > rect.h:
        exact_w, exact_h = rect.h * src_w / src_h, float(rect.h)
    w, h = min(rect.w, _even(round(exact_w))), min(rect.h, _even(round(exact_h)))
    return Rect(rect.x + _down((rect.w - w) / 2), rect.y + _down((rect.h - h) / 2), w, h)
