"""The matrix's shared pieces: one ``trax serve`` for every cell, the browser bundle, and the printed table."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.browser import build_bundle
from tests.interop.matrix import RESULTS, Cell, table
from tests.interop.studio import Trax, start_trax
from trax.ingest.srt import libsrt


@pytest.fixture(scope="session")
def trax_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trax]:
    """One real ``trax serve`` with RTMP, RTMPS, SRT and WHIP/WHEP on loopback free ports, for every cell."""
    trax = start_trax(tmp_path_factory.mktemp("trax"), srt=libsrt.available())
    try:
        yield trax
    finally:
        trax.server.stop()


@pytest.fixture(scope="session")
def web_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="session", autouse=True)
def matrix_table(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the last cell: the whole matrix as a table, printed past pytest's capture (and kept as a file)."""
    yield
    if not RESULTS:
        return
    text = table()
    reporter: Any = request.config.pluginmanager.get_plugin("terminalreporter")
    capture: Any = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None:
        # teardown output is captured (shown only on errors): the table is for every run
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line("")
            reporter.write_line("Interop matrix (client x protocol x direction):")
            for line in text.splitlines():
                reporter.write_line(line)
    # CI can keep the table as an artifact; otherwise it lands next to the run's temporary files
    out = Path(os.environ.get("TRAX_INTEROP_TABLE") or tmp_path_factory.getbasetemp() / "interop-matrix.md")
    out.write_text(text + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Each cell's outcome, in words for the table: ok (frames), failed (reason), skipped (reason)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    cell = callspec.params.get("cell") if callspec is not None else None
    if not isinstance(cell, Cell):
        return
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        RESULTS[cell] = f"skipped ({reason.removeprefix('Skipped: ')})"
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        message = " ".join(message.split()).removeprefix("AssertionError: ")
        RESULTS[cell] = f"failed ({message[:220]})"
    elif report.when == "call":
        detail = dict(report.user_properties).get("result", "")
        RESULTS[cell] = f"ok ({detail})" if detail else "ok"
