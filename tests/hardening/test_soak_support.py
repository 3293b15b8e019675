"""The soak test's arithmetic: frame numbers from framecrc lines, the loss window, the percentile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hardening.soak_support import FrameLog, follow_framecrc, percentile, vm_rss_mb


def framecrc(tb: str, pts: list[int]) -> bytes:
    head = f"#software: Lavf59\n#tb 0: {tb}\n#media_type 0: video\n".encode()
    return head + b"".join(f"0, {p:10d}, {p:10d},        1,   230400, 0x5907db13\n".encode() for p in pts)


def parse(tmp_path: Path, text: bytes) -> FrameLog:
    file = tmp_path / "frames.crc"
    file.write_bytes(text)
    log = FrameLog()
    proc = subprocess.Popen(
        [sys.executable, "-c", f"print(open({str(file)!r}).read(), end='')"], stdout=subprocess.PIPE
    )
    try:
        follow_framecrc(proc, log).join(timeout=10)
    finally:
        proc.wait(timeout=10)
    return log


def test_frame_numbers_come_from_the_pts_in_its_time_base(tmp_path: Path) -> None:
    assert [n for _, n in parse(tmp_path, framecrc("1/30", [0, 1, 2, 4])).frames] == [0, 1, 2, 4]
    ms = [0, 33, 67, 100, 167]  # FLV millisecond timestamps of frames 0, 1, 2, 3, 5
    assert [n for _, n in parse(tmp_path, framecrc("1/1000", ms)).frames] == [0, 1, 2, 3, 5]


def test_the_window_counts_only_frames_after_its_start_and_each_once(tmp_path: Path) -> None:
    log = parse(tmp_path, framecrc("1/30", [*range(0, 10), 10, 10, 12, 13, 15]))
    received = log.indexes_in(9, 15)  # frames 10..15 were sent; 11 and 14 never arrived, 10 twice
    assert received == {10, 12, 13, 15}
    assert 1 - len(received) / (15 - 9) == pytest.approx(1 / 3)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile([*[0.01] * 98, 5.0, 5.0], 99) == 5.0  # two failures in a hundred cross the p99
    assert percentile([*[0.01] * 99, 5.0], 99) == 0.01


def test_rss_of_this_process() -> None:
    assert 1 < vm_rss_mb(os.getpid()) < 10_000
