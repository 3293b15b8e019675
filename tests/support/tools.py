"""System tools a test needs: skip locally when missing, fail under ``TRAX_REQUIRE_ALL=1``."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ALL = os.environ.get("TRAX_REQUIRE_ALL") == "1"


def require_tool(name: str, *, why: str = "") -> str:
    """The tool's path; otherwise skip (or fail when CI demands every tool)."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/lib/postgresql/15/bin/{name}") if os.path.exists(p)), None
    )
    if path:
        return path
    reason = f"{name} is not installed{': ' + why if why else ''}"
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (TRAX_REQUIRE_ALL=1 requires it)")
    pytest.skip(reason)


def require(condition: bool, reason: str) -> None:
    """Same policy for anything else a test needs (a library, a kernel feature)."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (TRAX_REQUIRE_ALL=1 requires it)")
    pytest.skip(reason)
