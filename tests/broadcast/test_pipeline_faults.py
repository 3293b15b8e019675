"""A program pipeline that crashes is reported and restarted; it never takes the studio or the server down."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import memory_settings
from trax.broadcast.passthrough import PassthroughProgram
from trax.runtime import Runtime
from trax.services import Principal

pytestmark = pytest.mark.anyio


async def test_a_crashed_program_shows_the_error_and_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = PassthroughProgram.run
    crashes = {"left": 1}

    async def flaky(self: PassthroughProgram) -> None:
        if crashes["left"]:
            crashes["left"] -= 1
            await asyncio.sleep(0.2)
            raise RuntimeError("decoder exploded")
        await original(self)

    monkeypatch.setattr(PassthroughProgram, "run", flaky)
    async with Runtime(memory_settings(tmp_path)) as rt:  # type: ignore[arg-type]
        acct = await rt.services.accounts.create("acme")
        op = Principal.operator(acct.id)
        studio = await rt.services.studios.create(op, name="s")
        other = await rt.services.studios.create(op, name="other")
        status, _ = await rt.services.studios.go_live(op, studio.id)
        assert status.status.value == "live"
        seen: list[Any] = []
        for _ in range(100):  # 10 s at most: error, then running again after the backoff
            program = (await rt.services.studios.stream_status(op, studio.id)).program
            seen.append(program and program.status)
            if "error" in seen and seen[-1] == "running":
                break
            await asyncio.sleep(0.1)
        assert "error" in seen and seen[-1] == "running", seen
        # the studio stayed live, and another studio can still go live and off
        assert (await rt.services.studios.get(op, studio.id)).status.value == "live"
        await rt.services.studios.go_live(op, other.id)
        await rt.services.studios.go_offline(op, other.id)
        await rt.services.studios.go_offline(op, studio.id)
    assert any(studio.id in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)
