"""The ``trax`` command, run for real as a subprocess against a SQLite deployment."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.server import ServerProcess, dev_config

ROOT = Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.config = dev_config(tmp)
        self.path = tmp / "trax.yaml"
        self.path.write_text(yaml.safe_dump(self.config))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TRAX_")}

    def run(self, *args: str, config: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "trax.cli", *args]
        if config:
            cmd += ["-c", str(self.path)]
        return subprocess.run(cmd, cwd=self.tmp, env=self.env, capture_output=True, text=True, timeout=60)

    def json(self, *args: str) -> Any:
        res = self.run(*args, "--json")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _no_traceback(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in res.stderr + res.stdout


def test_accounts_and_keys_end_to_end(cli: Cli) -> None:
    acct = cli.json("accounts", "create", "acme")
    assert set(acct) == {"id", "name"} and acct["name"] == "acme" and acct["id"].startswith("acct_")
    text = cli.run("accounts", "create", "globex")
    assert text.returncode == 0 and text.stdout.startswith("acct_") and "globex" in text.stdout
    listed = cli.json("accounts", "list")
    assert [a["name"] for a in listed] == ["acme", "globex"]

    key = cli.json(
        "keys", "create", "--account", "acme", "--name", "ci", "--scope", "studios:read", "--scope", "stream:write"
    )
    assert set(key) == {"id", "name", "prefix", "scopes", "secret"}
    secret = key["secret"]
    assert secret.startswith("sk_live_") and key["prefix"] == secret[:12]
    assert key["scopes"] == ["studios:read", "stream:write"]
    by_id = cli.json("keys", "create", "--account", acct["id"], "--name", "by-id", "--scope", "keys:manage")
    assert by_id["secret"] != secret

    for fmt in (("--json",), ()):
        res = cli.run("keys", "list", "--account", "acme", *fmt)
        assert res.returncode == 0
        assert secret not in res.stdout and by_id["secret"] not in res.stdout
        assert key["id"] in res.stdout
    rows = cli.json("keys", "list", "--account", "acme")
    assert all("secret" not in r for r in rows)
    assert {r["id"] for r in rows} == {key["id"], by_id["id"]}
    assert all(r["prefix"].startswith("sk_live_") and len(r["prefix"]) == 12 for r in rows)

    # Only a keyed hash is stored: the secret is in neither the database nor its WAL,
    # and the keyed BLAKE2b of it under the server secret is.
    db_bytes = b"".join(
        p.read_bytes() for p in (cli.tmp / "trax.db", cli.tmp / "trax.db-wal") if p.exists() and p.stat().st_size
    )
    assert secret.encode() not in db_bytes and secret[12:].encode() not in db_bytes
    server_key = (cli.tmp / "secret.key").read_bytes().strip()
    keyed = hashlib.blake2b(secret.encode(), key=server_key, person=b"trax-secret", digest_size=32).hexdigest()
    assert keyed.encode() in db_bytes
    assert hashlib.sha256(secret.encode()).hexdigest().encode() not in db_bytes  # not an unkeyed hash

    revoked = cli.json("keys", "revoke", key["id"])
    assert revoked["id"] == key["id"] and revoked["revokedAt"]
    rows = {r["id"]: r for r in cli.json("keys", "list", "--account", "acme")}
    assert rows[key["id"]]["revokedAt"] and not rows[by_id["id"]]["revokedAt"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("keys", "create", "--account", "nobody", "--name", "x", "--scope", "studios:read"), "not_found"),
        (("keys", "revoke", "key_01JABCDEFGHJKMNPQRSTVWXYZ0"), "not_found"),
        (("keys", "list", "--account", "nobody"), "not_found"),
    ],
)
def test_errors_go_to_stderr_with_non_zero_exit(cli: Cli, args: tuple[str, ...], code: str) -> None:
    res = cli.run(*args, "--json")
    assert res.returncode == 1 and res.stdout == ""
    assert json.loads(res.stderr)["error"]["code"] == code
    _no_traceback(res)
    text = cli.run(*args)
    assert text.returncode == 1 and text.stdout == "" and f"trax: {code}:" in text.stderr
    _no_traceback(text)


def test_invalid_input_and_conflicts(cli: Cli) -> None:
    cli.json("accounts", "create", "acme")
    dup = cli.run("accounts", "create", "acme", "--json")
    assert dup.returncode == 1 and json.loads(dup.stderr)["error"]["code"] == "conflict"
    bad = cli.run("keys", "create", "--account", "acme", "--name", "x", "--scope", "studios:admin", "--json")
    assert bad.returncode == 1 and json.loads(bad.stderr)["error"]["code"] == "invalid_request"
    usage = cli.run("keys", "create", "--account", "acme")  # argparse: missing --name/--scope
    assert usage.returncode == 2 and "usage:" in usage.stderr
    for res in (dup, bad, usage):
        _no_traceback(res)


def test_config_from_env_and_bad_config(cli: Cli) -> None:
    cli.env["TRAX_CONFIG"] = str(cli.path)
    assert cli.run("accounts", "create", "via-env", config=False).returncode == 0
    assert [a["name"] for a in json.loads(cli.run("accounts", "list", "--json", config=False).stdout)] == ["via-env"]
    (cli.tmp / "broken.yaml").write_text("storage: {backend: nope}\n")
    res = cli.run("accounts", "list", "-c", str(cli.tmp / "broken.yaml"), config=False)
    assert res.returncode == 1 and "storage.backend: unknown backend 'nope'" in res.stderr
    _no_traceback(res)
    res = cli.run("accounts", "list", "--json", "-c", str(cli.tmp / "broken.yaml"), config=False)
    assert json.loads(res.stderr)["error"]["code"] == "config_error"


def test_storage_that_cannot_open_is_one_line(cli: Cli) -> None:
    # storage under a path that is a file: the OS error is reported without a traceback
    (cli.tmp / "blocker").write_text("")
    cli.config["storage"]["options"]["path"] = str(cli.tmp / "blocker" / "trax.db")
    cli.path.write_text(yaml.safe_dump(cli.config))
    res = cli.run("accounts", "list")
    assert res.returncode == 1 and res.stderr.startswith("trax: unavailable: Cannot open the SQLite storage file")
    _no_traceback(res)


def test_plugins_lists_builtins_and_what_they_provide(cli: Cli) -> None:
    rows = cli.json("plugins")
    by_name = {r["name"]: r for r in rows}
    assert by_name["trax.plugins.sqlite_storage"]["provides"] == ["storage:sqlite"]
    assert by_name["trax.plugins.sqlite_storage"]["builtin"] is True
    assert "rate_limiters:memory" in by_name["trax.plugins.memory_limits"]["provides"]
    assert "platforms:loopback" in by_name["trax.plugins.loopback_platform"]["provides"]
    text = cli.run("plugins")
    assert text.returncode == 0 and "trax.plugins.memory_storage: storage:memory" in text.stdout


def test_check_reports_plugins(cli: Cli) -> None:
    info = cli.json("check")
    assert info["ok"] is True and info["storage"] == "sqlite" and info["platforms"] == ["loopback"]


@pytest.mark.slow
def test_revoked_key_fails_on_the_running_servers_next_request(tmp_path: Path) -> None:
    """Write last: needs the /v1 routes (GET /v1/studios) of the API issue."""
    with ServerProcess(dev_config(tmp_path), tmp_path) as server:
        server.cli_json("accounts", "create", "acme")
        key = server.cli_json("keys", "create", "--account", "acme", "--name", "live", "--scope", "studios:read")
        headers = {"Authorization": f"Bearer {key['secret']}"}
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            first = http.get("/v1/studios", headers=headers)
            assert first.status_code == 200, first.text
            assert first.json()["data"] == []
            server.cli_json("keys", "revoke", key["id"])
            after = http.get("/v1/studios", headers=headers)
            assert after.status_code == 401, after.text
            assert after.json()["error"]["code"] == "unauthorized"
            alias = http.get("/v1/studios", headers={"X-API-Key": key["secret"]})
            assert alias.status_code == 401
        assert key["secret"] not in server.log()


def test_loopback_platform_commands(cli: Cli) -> None:
    import asyncio
    import contextlib

    from trax.runtime import Runtime
    from trax.services import Principal

    acct = cli.json("accounts", "create", "acme")
    conn = cli.json("loopback", "link", "--account", "acme", "--display-name", "My channel")
    assert conn["platform"] == "loopback" and conn["id"].startswith("conn_")

    async def make_studio() -> str:
        async with Runtime.from_file(str(cli.path)) as rt:
            return (await rt.services.studios.create(Principal.operator(acct["id"]), name="S")).id

    with contextlib.chdir(cli.tmp):  # nothing the runtime writes lands in the repository
        studio = asyncio.run(make_studio())
    msg = cli.json(
        "loopback", "chat", "--account", "acme", "--connection", conn["id"], "--studio", studio, "--text", "hi!"
    )
    assert msg["studioId"] == studio and msg["text"] == "hi!" and msg["id"].startswith("msg_")

    async def read_chat() -> list[tuple[str, str, str]]:
        async with Runtime.from_file(str(cli.path)) as rt:
            page = await rt.services.chat.list(Principal.operator(acct["id"]), studio)
            return [(m.direction, m.platform, m.author_name) for m in page.data]

    with contextlib.chdir(cli.tmp):
        assert asyncio.run(read_chat()) == [("inbound", "loopback", "viewer")]
    bad = cli.run(
        "loopback", "chat", "--account", "acme", "--connection", "conn_nope", "--studio", studio, "--text", "x"
    )
    assert bad.returncode == 1 and "not_found" in bad.stderr
    _no_traceback(bad)


def test_serve_refuses_a_bad_file_and_a_busy_port_without_traceback(cli: Cli) -> None:
    import socket

    (cli.tmp / "bad.yaml").write_text("servr: {}\n")
    bad = cli.run("serve", str(cli.tmp / "bad.yaml"), config=False)
    assert bad.returncode == 1 and "servr: unknown key" in bad.stderr
    _no_traceback(bad)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        cli.config["server"]["port"] = holder.getsockname()[1]
        cli.path.write_text(yaml.safe_dump(cli.config))
        busy = cli.run("serve", str(cli.path), config=False)
    assert busy.returncode != 0 and "address already in use" in busy.stderr
    _no_traceback(busy)


def test_operator_sets_a_key_rate_limit_above_the_default(cli: Cli) -> None:
    # /v1 may only lower a key's bucket; raising it is the operator's, from the shell
    cli.json("accounts", "create", "acme")
    args = ("keys", "create", "--account", "acme", "--name", "bulk", "--scope", "studios:read")
    key = cli.json(*args, "--rate-capacity", "100000", "--rate-refill", "5000")
    assert key["rateLimit"] == {"capacity": 100000, "refillPerSecond": 5000.0}
    half = cli.run(*args, "--rate-capacity", "10")
    assert half.returncode == 1 and "--rate-refill" in half.stderr
    _no_traceback(half)
    bad = cli.run(*args, "--rate-capacity", "0", "--rate-refill", "1")
    assert bad.returncode == 1 and "rateLimit" in bad.stderr
    _no_traceback(bad)
