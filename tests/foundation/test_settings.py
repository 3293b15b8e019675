"""The deployment file: YAML, TRAX_* overrides, the exact-name write flag, and refusals that name the field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trax.runtime import Runtime
from trax.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]

BASE = """
server: {host: 127.0.0.2, port: 9000}
storage: {backend: sqlite, options: {path: from-yaml.db, synchronous: normal}}
limits: {backend: memory, options: {capacity: 10, refill_per_second: 2}}
blobs: {backend: memory}
public_api: {write_enabled: true}
security: {secret_key: settings-test-secret-xxxxxxxxxxxxxxxxxxxxxxxx}
ingest: {host: 127.0.0.1, rtmp: {port: 1935}}
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("TRAX_") or name == "PUBLIC_API_WRITE_ENABLED":
            monkeypatch.delenv(name)
    return monkeypatch


def _write(tmp_path: Path, text: str, name: str = "trax.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_values_are_loaded(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    s = load_settings(_write(tmp_path, BASE))
    assert (s.server.host, s.server.port) == ("127.0.0.2", 9000)
    assert s.storage.backend == "sqlite" and s.storage.options == {"path": "from-yaml.db", "synchronous": "normal"}
    assert s.limits.options == {"capacity": 10, "refill_per_second": 2}
    assert s.public_api.write_enabled is True
    assert (s.ingest.model_extra or {})["rtmp"] == {"port": 1935}


def test_environment_overrides_nested_keys_and_keeps_the_rest(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TRAX_SERVER__PORT", "8123")
    clean_env.setenv("TRAX_STORAGE__OPTIONS__PATH", str(tmp_path / "x.db"))
    clean_env.setenv("TRAX_INGEST__RTMP__PORT", "19350")
    clean_env.setenv("PUBLIC_API_WRITE_ENABLED", "false")
    s = load_settings(_write(tmp_path, BASE))
    assert s.server.port == 8123 and s.server.host == "127.0.0.2"
    assert s.storage.options["path"] == str(tmp_path / "x.db")
    assert s.storage.options["synchronous"] == "normal"  # deep merge: the sibling key is kept
    assert int((s.ingest.model_extra or {})["rtmp"]["port"]) == 19350
    assert s.public_api.write_enabled is False
    # the overrides reach the built backends too
    rt = Runtime(s)
    assert str(rt.storage._opts.path) == str(tmp_path / "x.db")


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("0", False), ("true", True), ("1", True)])
def test_write_flag_by_its_exact_name_wins_over_yaml(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    clean_env.setenv("PUBLIC_API_WRITE_ENABLED", value)
    yaml_says = "false" if expected else "true"
    s = load_settings(_write(tmp_path, f"public_api: {{write_enabled: {yaml_says}}}\n"))
    assert s.public_api.write_enabled is expected


def test_write_flag_defaults_off_without_file_or_env(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings(None).public_api.write_enabled is False


def test_shipped_configs_load(clean_env: pytest.MonkeyPatch) -> None:
    dev = load_settings(ROOT / "configs" / "dev.yaml")
    assert dev.public_api.write_enabled is True and dev.server.host == "127.0.0.1"
    prod = load_settings(ROOT / "configs" / "production.example.yaml")
    assert prod.public_api.write_enabled is False


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("servr: {port: 1}\n", "servr: unknown key"),
        ("server: {port: abc}\n", "server.port:"),
        ("server: {port: 70000}\n", "server.port:"),
        ("limits: {meta_capacity: 0}\n", "limits.meta_capacity:"),
        ("public_api: {write_enabled: maybe}\n", "public_api.write_enabled:"),
        ("server: [\n", "not valid YAML at line"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("just a string\n", "top level must be a mapping"),
        ("1: {port: 1}\n", "section names must be strings, not 1"),
    ],
)
def test_bad_files_are_refused_with_the_field_path(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, text: str, where: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text))
    assert where in str(err.value)


def test_env_errors_name_the_variable(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TRAX_SERVER__PORT", "not-a-port")
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, BASE))
    assert "server.port" in str(err.value) and "TRAX_SERVER__PORT" in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "nope.yaml")
    assert "no such file" in str(err.value)


def _check(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRAX_") and k != "PUBLIC_API_WRITE_ENABLED"}
    return subprocess.run(
        [sys.executable, "-m", "trax.cli", "check", *args],
        cwd=tmp_path,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("servr: {}\n", "servr: unknown key"),
        ("server: {port: abc}\n", "server.port: Input should be a valid integer"),
        ("storage: {backend: nope}\n", "storage.backend: unknown backend 'nope'; known: "),
        ("storage: {backend: sqlite, options: {bogus: 1}}\n", "storage.options.bogus: unknown key"),
        ("limits: {backend: memory, options: {capacity: 0}}\n", "limits.options.capacity"),
        ("platforms: {nosuch: {}}\n", "platforms.nosuch.backend: unknown backend"),
        ("server: [\n", "not valid YAML"),
        ("[1, 2]\n", "top level must be a mapping"),
    ],
)
def test_trax_check_refuses_bad_files_on_stderr_without_traceback(tmp_path: Path, text: str, where: str) -> None:
    _write(tmp_path, text)
    res = _check(tmp_path, "trax.yaml")
    assert res.returncode == 1
    assert where in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert res.stdout == ""


def test_trax_check_missing_file(tmp_path: Path) -> None:
    res = _check(tmp_path, "absent.yaml")
    assert res.returncode == 1 and "absent.yaml: no such file" in res.stderr and "Traceback" not in res.stderr


def test_trax_check_reports_the_chosen_plugins(tmp_path: Path) -> None:
    import json

    _write(tmp_path, BASE)
    res = _check(tmp_path, "trax.yaml", "--json", env={"TRAX_BLOBS__BACKEND": "filesystem"})
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["ok"] is True and info["storage"] == "sqlite" and info["limits"] == "memory"
    assert info["blobs"] == "filesystem" and "api_key" in info["authenticators"]
    assert info["writeEnabled"] is True
    text = _check(tmp_path, "trax.yaml")
    assert text.returncode == 0 and "trax.yaml: OK" in text.stdout and "storage: sqlite" in text.stdout
    # -c and TRAX_CONFIG name the file as well
    assert _check(tmp_path, "-c", "trax.yaml").returncode == 0
    assert _check(tmp_path, env={"TRAX_CONFIG": "trax.yaml"}).returncode == 0


@pytest.mark.anyio
async def test_env_port_reaches_a_real_transport(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    """TRAX_INGEST__<T>__PORT moves a transport the file enabled: the listener answers on the new port."""
    import asyncio

    from trax.ports import free_port

    port = free_port()
    clean_env.setenv("TRAX_INGEST__RTMP__PORT", str(port))
    clean_env.chdir(tmp_path)  # the file's relative storage path lands here
    s = load_settings(_write(tmp_path, BASE.replace("rtmp: {port: 1935}", "rtmp: {enabled: true, port: 1}")))
    rt = Runtime(s)
    assert "rtmp" in rt.transports
    async with rt:
        await rt.start_transports()
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout=10)
        writer.close()
        await writer.wait_closed()


def test_trax_check_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "trax.yaml").write_text(
        "storage: {backend: sqlite, options: {path: var/trax.db}}\n"
        "blobs: {backend: filesystem, options: {root: var/blobs}}\n"
        "security: {secret_key_file: var/secret.key}\n"
    )
    res = _check(tmp_path, "trax.yaml")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trax.yaml"]  # no secret, database or blob folder


@pytest.mark.anyio
async def test_a_dry_run_runtime_cannot_start(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rt = Runtime(load_settings(None, security={"secret_key_file": str(tmp_path / "k")}), dry_run=True)
    assert not (tmp_path / "k").exists()
    with pytest.raises(RuntimeError):
        await rt.start()
