"""``trax tokens``: mint with ready-to-paste URLs, JWKS, rotation, and clean errors."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import yaml

from trax.runtime import Runtime
from trax.services import Principal


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trax.cli", "tokens", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
    )


def deployment(tmp_path: Path) -> tuple[Path, str]:
    config = {
        "storage": {"backend": "sqlite", "options": {"path": str(tmp_path / "t.db")}},
        "security": {"secret_key_file": str(tmp_path / "secret.key")},
        "ingest": {
            "public_host": "media.example.test",
            "whip": {"enabled": True, "port": 18889},
            "srt": {"enabled": True, "port": 18890},
        },
    }
    path = tmp_path / "trax.yaml"
    path.write_text(yaml.safe_dump(config))

    async def provision() -> str:
        async with Runtime.from_file(str(path)) as rt:
            acct = await rt.services.accounts.create("acme")
            op = Principal.operator(acct.id)
            studio = await rt.services.studios.create(op, name="s")
            src = await rt.services.sources.create(op, studio.id, name="cam", kind="whip")
            return src.path

    return path, asyncio.run(provision())


def test_mint_json_then_verify_against_the_jwks(tmp_path: Path) -> None:
    config, src_path = deployment(tmp_path)
    out = run(config, "mint", "--path", src_path, "--action", "publish", "--ttl", "120", "--json")
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    assert set(data) >= {"token", "expiresAt", "path", "action", "urls"}
    token = data["token"]
    assert data["urls"]["whip"] == f"http://media.example.test:18889/{src_path}/whip?access_token={token}"
    assert data["urls"]["srt"] == f"srt://media.example.test:18890?streamid=publish:{src_path}:trax:{token}"
    jwks = json.loads(run(config, "jwks").stdout)
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience="trax-talk", issuer="trax")
    assert claims["path"] == src_path and claims["exp"] - claims["iat"] == 120
    # a WHEP-only token lists only the WHEP URL
    read = json.loads(
        run(config, "mint", "--path", src_path, "--action", "read", "--audience", "trax-read", "--json").stdout
    )
    assert list(read["urls"]) == ["whep"]


def test_rotate_keeps_the_old_key_published(tmp_path: Path) -> None:
    config, _ = deployment(tmp_path)
    before = {k["kid"] for k in json.loads(run(config, "jwks").stdout)["keys"]}
    rotated = json.loads(run(config, "rotate", "--json").stdout)["kid"]
    after = {k["kid"] for k in json.loads(run(config, "jwks").stdout)["keys"]}
    assert after == before | {rotated} and len(after) == 2
    old = before.pop()
    assert run(config, "retire", old).returncode == 0
    assert {k["kid"] for k in json.loads(run(config, "jwks").stdout)["keys"]} == {rotated}


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    config, src_path = deployment(tmp_path)
    for args in (
        ("mint", "--path", "inputs/nope", "--action", "publish"),
        ("mint", "--path", "inputs/whip-00000000-0000-4000-8000-000000000000", "--action", "publish"),
        ("mint", "--path", src_path, "--action", "read", "--audience", "trax-talk"),
        ("mint", "--path", src_path, "--action", "publish", "--ttl", "0"),
    ):
        out = run(config, *args)
        assert out.returncode == 1, args
        assert "Traceback" not in out.stderr and out.stderr.startswith("trax: "), out.stderr
    bad = run(config, "mint", "--path", src_path, "--action", "publish", "--ttl", "soon")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
