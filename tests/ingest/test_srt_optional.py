"""``ingest.srt.optional``: a machine without libsrt still starts (the dev deployment sets it), with a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import memory_settings
from trax.ingest.srt import libsrt
from trax.runtime import Runtime

pytestmark = pytest.mark.anyio


def _missing() -> libsrt.LibSrt:
    raise libsrt.SrtUnavailable("libsrt 1.5 is not installed (Debian: apt-get install libsrt1.5-openssl)")


@pytest.mark.parametrize("optional", [True, False])
async def test_without_libsrt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, optional: bool
) -> None:
    monkeypatch.setattr(libsrt, "load", _missing)
    ingest = {"host": "127.0.0.1", "srt": {"enabled": True, "port": 0, "optional": optional}}
    rt = Runtime(memory_settings(tmp_path, ingest=ingest))  # type: ignore[arg-type]
    async with rt:
        if optional:
            with caplog.at_level(logging.WARNING):
                await rt.start_transports()
            assert any("SRT is off" in r.getMessage() and "libsrt1.5-openssl" in r.getMessage() for r in caplog.records)
        else:
            with pytest.raises(libsrt.SrtUnavailable):
                await rt.start_transports()
        await rt.transports["srt"].stop()
