from __future__ import annotations

import subprocess
import sys

import trax


def test_sdk_names_are_public() -> None:
    from trax.client import AsyncClient, Client
    from trax.notebook import connect

    assert trax.connect is connect and trax.Client is Client and trax.AsyncClient is AsyncClient
    assert {"connect", "Client", "AsyncClient"} <= set(trax.__all__)


def test_import_trax_does_not_load_the_sdk() -> None:
    heavy = ("httpx", "trax.client", "trax.notebook", "trax.runtime")
    code = f"import sys, trax; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
