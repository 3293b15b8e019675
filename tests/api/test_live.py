"""Against a real ``trax serve``: schemathesis over the served document, and a generated client."""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, dev_config
from trax.domain.keys import RateLimitOverride
from trax.domain.scopes import SCOPES
from trax.runtime import Runtime
from trax.services import Principal
from trax.settings import load_settings

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


async def _seed(config_path: Path) -> str:
    async with Runtime(load_settings(config_path)) as rt:
        acct = await rt.services.accounts.create("live")
        op = Principal.operator(acct.id)
        for i in range(3):
            await rt.services.studios.create(op, name=f"seed {i}")
        # a bucket big enough that the fuzzer is never throttled (throttling has its own test)
        _, secret = await rt.services.keys.create(
            op, name="fuzz", scopes=list(SCOPES), rate_limit=RateLimitOverride(capacity=10**6, refill_per_second=10**5)
        )
        return secret


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    tmp = tmp_path_factory.mktemp("live")
    config = dev_config(tmp)
    # schemathesis sends bad credentials on purpose, thousands of times, and checks the 401s: the per-address
    # auth-failure throttle (tests/api/test_auth_throttle.py) would answer its later tries with 429
    config["limits"].update(
        meta_capacity=100_000,
        meta_refill_per_second=10_000,
        auth_failure_capacity=1_000_000,
        auth_failure_refill_per_second=10_000,
    )
    server = ServerProcess(config, tmp)
    secret = asyncio.run(_seed(server.config_path))
    with server:
        yield server, secret


SCHEMATHESIS_TOML = """
[checks]
positive_data_acceptance.expected-statuses = ["2XX", "401", "403", "404", "409", "429"]

# Opaque cursors, ids in query strings and rules the schema cannot express (a media source needs an
# asset and has no stream key, custom_rtmp needs a URL, content types from config, a token ttl bounded by the
# deployment):
# schema-valid input these operations legitimately refuse with 400.
[[operations]]
include-operation-id-regex = \"\"\"^(list.*|create(Source|Destination|Upload|SessionToken|ProgramSessionToken|Key)|\
update(Destination|Source|Studio)|rotate(Key|StreamKey)|putUploadBytes|sendChatMessage)$\"\"\"
checks.positive_data_acceptance.expected-statuses = ["2XX", "400", "401", "403", "404", "409", "413", "429"]
"""


def test_schemathesis_against_live_server(live: tuple[ServerProcess, str], tmp_path: Path) -> None:
    server, secret = live
    toml = tmp_path / "schemathesis.toml"
    toml.write_text(SCHEMATHESIS_TOML)
    cmd = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(toml),
        "run",
        f"{server.base_url}/v1/openapi.json",
        "--checks",
        "all",
        "--workers",
        "1",
        "--max-examples",
        "8",
        "--max-time",
        "100",
        "--request-timeout",
        "10",
        "--seed",
        "1",
        "-H",
        f"Authorization: Bearer {secret}",
        # revoking or rotating the fuzzing key would turn the rest of the run into 401s
        "--exclude-operation-id",
        "revokeKey",
        "--exclude-operation-id",
        "rotateKey",
    ]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    out = proc.stdout + proc.stderr
    (tmp_path / "schemathesis.out").write_text(out)
    if os.environ.get("TRAX_ST_OUT"):
        Path(os.environ["TRAX_ST_OUT"]).write_text(out)
    assert "Open API 3.0.3" in out
    assert proc.returncode == 0, out[-6000:]
    assert "Traceback" not in server.log(), server.log()[-3000:]  # no 500 was logged


def test_generated_client_lists_creates_and_pages(live: tuple[ServerProcess, str], tmp_path: Path) -> None:
    server, secret = live
    spec = tmp_path / "openapi.json"
    spec.write_bytes(httpx.get(f"{server.base_url}/v1/openapi.json", timeout=10).content)
    out = tmp_path / "trax_generated_client"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        pkg: Any = importlib.import_module("trax_generated_client")
        list_studios: Any = importlib.import_module("trax_generated_client.api.studios.list_studios")
        create_studio: Any = importlib.import_module("trax_generated_client.api.studios.create_studio")
        models: Any = importlib.import_module("trax_generated_client.models")
        client = pkg.AuthenticatedClient(base_url=server.base_url, token=secret)
        with client as c:
            created = [create_studio.sync(client=c, body=models.StudioCreate(name=f"generated {i}")) for i in range(5)]
            assert all(isinstance(s, models.Studio) for s in created)
            ids: list[str] = []
            cursor: Any = pkg.types.UNSET
            while True:
                page = list_studios.sync(client=c, limit=2, cursor=cursor)
                assert isinstance(page, models.StudioPage)
                assert len(page.data) <= 2
                ids += [s.id for s in page.data]
                if not isinstance(page.next_cursor, str):
                    break
                cursor = page.next_cursor
            assert {s.id for s in created} <= set(ids) and ids == sorted(ids)
            err = list_studios.sync_detailed(client=c, limit=0)
            assert err.status_code == 400 and isinstance(err.parsed, models.ErrorEnvelope)
            assert err.parsed.error.code == "invalid_request"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("trax_generated_client")]:
            del sys.modules[name]


def test_envelope_over_real_http(live: tuple[ServerProcess, str]) -> None:
    server, secret = live
    h = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        cases = [
            (c.get("/v1/nope"), 404, "not_found"),
            (c.put("/v1/studios", headers=h), 405, "method_not_allowed"),
            (
                c.post("/v1/studios", headers={**h, "content-type": "application/json"}, content=b"{oops"),
                400,
                "invalid_request",
            ),
            (
                c.post("/v1/studios", headers={**h, "content-type": "text/plain"}, content=b"x"),
                415,
                "unsupported_media_type",
            ),
            (c.get("/v1/studios"), 401, "unauthorized"),
        ]

        def big() -> Iterator[bytes]:
            yield b'{"name": "'
            for _ in range(2048):
                yield b"x" * 1024
            yield b'"}'

        cases.append(
            (
                c.post("/v1/studios", headers={**h, "content-type": "application/json"}, content=big()),
                413,
                "payload_too_large",
            )
        )
        for r, status, code in cases:
            assert r.status_code == status, r.text
            assert r.json()["error"]["code"] == code
            assert r.json()["error"]["requestId"] == r.headers["x-request-id"]
