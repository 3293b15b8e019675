"""Layout geometry: every rectangle inside the frame, even, and the tiled layouts without overlaps."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from trax.broadcast.layouts import Rect, fit, grid_shape, slots
from trax.domain.program import MAX_PROGRAM_SOURCES, MAX_SIZE, MIN_SIZE, Layout

widths = st.integers(MIN_SIZE[0], MAX_SIZE[0])
heights = st.integers(MIN_SIZE[1], MAX_SIZE[1])
counts = st.integers(0, MAX_PROGRAM_SOURCES)
layouts = st.sampled_from(list(Layout))


def inside(rect: Rect, width: int, height: int) -> bool:
    return (
        rect.x >= 0
        and rect.y >= 0
        and rect.w > 0
        and rect.h > 0
        and rect.x + rect.w <= width
        and rect.y + rect.h <= height
    )


def even(rect: Rect) -> bool:
    return all(v % 2 == 0 for v in rect)


def overlap(a: Rect, b: Rect) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


@given(layouts, counts, widths, heights)
def test_rects_are_even_and_inside_the_frame(layout: Layout, count: int, width: int, height: int) -> None:
    rects = slots(layout, count, width, height)
    assert len(rects) <= count
    assert (len(rects) > 0) == (count > 0)
    for rect in rects:
        assert inside(rect, width, height), rect
        assert even(rect), rect


@given(st.sampled_from([Layout.GRID, Layout.SIDE_BY_SIDE]), counts, widths, heights)
def test_tiled_layouts_do_not_overlap(layout: Layout, count: int, width: int, height: int) -> None:
    rects = slots(layout, count, width, height)
    for a, b in itertools.combinations(rects, 2):
        assert not overlap(a, b), (a, b)


@given(counts, widths, heights)
def test_grid_shows_everyone_in_the_smallest_grid(count: int, width: int, height: int) -> None:
    rects = slots(Layout.GRID, count, width, height)
    assert len(rects) == count
    cols, rows = grid_shape(count)
    if count:
        assert cols * rows >= count
        assert (cols - 1) * rows < count or cols * (rows - 1) < count  # nothing smaller holds them
        assert all(r.w >= width // cols - 2 and r.h >= height // rows - 2 for r in rects)


@given(counts, widths, heights)
def test_pip_insets_are_quarter_size_in_the_bottom_right(count: int, width: int, height: int) -> None:
    rects = slots(Layout.PIP, count, width, height)
    if not count:
        return
    assert rects[0] == Rect(0, 0, width & ~1, height & ~1)
    insets = rects[1:]
    for inset in insets:
        assert abs(inset.w - width / 4) <= 2 and abs(inset.h - height / 4) <= 2
        assert inset.x + inset.w > width * 0.9  # hugging the right edge
    for lower, upper in itertools.pairwise(insets):
        assert upper.y + upper.h < lower.y  # stacked upwards with a gap
    if insets:
        assert insets[0].y + insets[0].h > height * 0.9


def test_fixed_examples() -> None:
    assert slots(Layout.SINGLE, 3, 1280, 720) == [Rect(0, 0, 1280, 720)]
    assert slots(Layout.SIDE_BY_SIDE, 3, 1280, 720) == [Rect(0, 0, 640, 720), Rect(640, 0, 640, 720)]
    assert slots(Layout.SIDE_BY_SIDE, 1, 1280, 720) == [Rect(0, 0, 640, 720)]
    assert slots(Layout.GRID, 3, 1280, 720) == [Rect(0, 0, 640, 360), Rect(640, 0, 640, 360), Rect(0, 360, 640, 360)]
    assert grid_shape(5) == (3, 2) and grid_shape(9) == (3, 3) and grid_shape(1) == (1, 1)
    pip = slots(Layout.PIP, 2, 1280, 720)
    assert pip[1] == Rect(1280 - 18 - 320, 720 - 18 - 180, 320, 180)
    assert slots(Layout.GRID, 0, 1280, 720) == []


@given(st.integers(1, 4000), st.integers(1, 4000), widths, heights)
def test_fit_keeps_aspect_inside_the_rect(src_w: int, src_h: int, width: int, height: int) -> None:
    rect = Rect(2, 4, width & ~1, height & ~1)
    box = fit(src_w, src_h, rect)
    assert even(box)
    assert box.x >= rect.x and box.y >= rect.y
    assert box.x + box.w <= rect.x + rect.w and box.y + box.h <= rect.y + rect.h
    assert box.w == rect.w or box.h == rect.h or box.w <= 2 or box.h <= 2 or abs(box.w - rect.w) <= 2
    # the aspect ratio is kept up to rounding to even pixels
    if box.w > 20 and box.h > 20:
        assert abs(box.w / box.h - src_w / src_h) / (src_w / src_h) < 0.1


def test_fit_letterboxes_and_pillarboxes() -> None:
    assert fit(1280, 720, Rect(0, 0, 640, 720)) == Rect(0, 180, 640, 360)
    assert fit(720, 1280, Rect(0, 0, 1280, 720)) == Rect(438, 0, 404, 720)
    assert fit(320, 180, Rect(160, 90, 160, 90)) == Rect(160, 90, 160, 90)
