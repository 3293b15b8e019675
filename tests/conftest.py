from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from trax.runtime import Runtime
from trax.services import Principal
from trax.settings import load_settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def memory_settings(tmp_path: Path, **overrides: object) -> object:
    base: dict[str, object] = {
        "storage": {"backend": "memory"},
        "blobs": {"backend": "memory"},
        "security": {"secret_key": "test-secret-" + "x" * 40},
        "public_api": {"write_enabled": True},
        "platforms": {"loopback": {}},
        "broadcast": {"recordings_dir": str(tmp_path / "recordings"), "media_cache_dir": str(tmp_path / "cache")},
    }
    base.update(overrides)
    return load_settings(None, **base)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A started in-memory runtime."""
    rt = Runtime(memory_settings(tmp_path))  # type: ignore[arg-type]
    async with rt:
        yield rt


@pytest.fixture
async def operator(runtime: Runtime) -> Principal:
    acct = await runtime.services.accounts.create("acme")
    return Principal.operator(acct.id)
