"""Plugins: an installed package found through the ``trax`` entry points, a one-file plugin, refusals."""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import memory_settings
from trax.plugin_api import Backend, hookimpl
from trax.plugin_manager import describe_plugins, make_plugin_manager
from trax.runtime import Runtime
from trax.services import Principal
from trax.settings import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "fixtures" / "demo_plugin"
ONE_FILE = ROOT / "examples" / "one_file_plugin.py"


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo package laid out as an installed distribution: its code plus a .dist-info.

    The entry points come from the package's own pyproject.toml, so this is what
    ``pip install tests/fixtures/demo_plugin`` would put in site-packages, without a network.
    """
    site = tmp_path_factory.mktemp("site")
    meta = tomllib.loads((DEMO / "pyproject.toml").read_text())["project"]
    shutil.copytree(DEMO / "src" / "trax_demo_plugin", site / "trax_demo_plugin")
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    lines = []
    for group, entries in meta["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


@pytest.fixture
def with_demo(demo_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(demo_site))
    importlib.invalidate_caches()
    yield demo_site
    sys.modules.pop("trax_demo_plugin", None)


def _trax(cwd: Path, *args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAX_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "trax.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


# --- an installed package, found through the entry-point group ---------------------------------


def test_trax_plugins_lists_the_installed_package(demo_site: Path, tmp_path: Path) -> None:
    res = _trax(tmp_path, "plugins", "--json", pythonpath=demo_site)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["demo"]["distribution"] == "trax-demo-plugin 0.1.0"
    assert rows["demo"]["provides"] == ["storage:demo"] and rows["demo"]["builtin"] is False
    text = _trax(tmp_path, "plugins", pythonpath=demo_site)
    assert "demo (trax-demo-plugin 0.1.0): storage:demo" in text.stdout
    # without the package on the path it is not there
    assert "demo" not in {r["name"] for r in json.loads(_trax(tmp_path, "plugins", "--json").stdout)}


def test_yaml_selects_the_installed_backend(demo_site: Path, tmp_path: Path) -> None:
    (tmp_path / "trax.yaml").write_text(
        yaml.safe_dump(
            {"storage": {"backend": "demo", "options": {"label": "from-yaml"}}, "blobs": {"backend": "memory"}}
        )
    )
    res = _trax(tmp_path, "check", "trax.yaml", "--json", pythonpath=demo_site)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["storage"] == "demo"
    # its options model checks the file
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"storage": {"backend": "demo", "options": {"lable": "x"}}}))
    bad = _trax(tmp_path, "check", "bad.yaml", pythonpath=demo_site)
    assert bad.returncode == 1 and "storage.options.lable: unknown key" in bad.stderr
    # and without the package the name is unknown, with the known ones listed
    missing = _trax(tmp_path, "check", "trax.yaml")
    assert missing.returncode == 1 and "unknown backend 'demo'; known: " in missing.stderr
    assert "sqlite" in missing.stderr


@pytest.mark.anyio
async def test_the_runtime_uses_the_installed_backend(with_demo: Path, tmp_path: Path) -> None:
    settings = memory_settings(tmp_path, storage={"backend": "demo", "options": {"label": "x"}})
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        assert type(rt.storage).__name__ == "DemoStorage"
        before = rt.storage.batches  # type: ignore[attr-defined]
        acct = await rt.services.accounts.create("plugged")
        await rt.services.studios.create(Principal.operator(acct.id), name="s")
        assert rt.storage.batches == before + 2  # type: ignore[attr-defined]
        assert rt.storage.label == "x"  # type: ignore[attr-defined]


def test_a_disabled_entry_point_is_not_loaded(with_demo: Path, tmp_path: Path) -> None:
    settings = load_settings(None, plugins={"disabled": ["demo"]}, storage={"backend": "demo"})
    with pytest.raises(ConfigError) as err:
        Runtime(settings)
    assert "unknown backend 'demo'" in str(err.value)


# --- a one-file plugin from plugins.paths ---------------------------------------------------------


@pytest.mark.anyio
async def test_one_file_plugin_loads_and_works(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = memory_settings(
        tmp_path, plugins={"paths": [str(ONE_FILE)]}, platforms={"console": {"prefix": "[test]"}}
    )
    caplog.set_level(logging.INFO, logger="trax.examples.one_file_plugin")
    async with Runtime(settings) as rt:  # type: ignore[arg-type]
        s = rt.services
        op = Principal.operator((await s.accounts.create("a")).id)
        studio = await s.studios.create(op, name="S")
        conn = await s.connections.link(op.account_id, platform="console", display_name="me", external_account_id="me")
        await s.destinations.create(op, studio.id, {"name": "c", "platform": "console", "connectionId": conn.id})
        await s.chat.send(op, studio.id, text="hello from the test")
        await s.studios.go_live(op, studio.id)
        assert rt.platforms["console"].lines == ["[test] me: hello from the test"]  # type: ignore[attr-defined]
    logged = caplog.text
    assert "event chat.message" in logged and "event stream.live" in logged


def test_one_file_plugin_options_are_checked(tmp_path: Path) -> None:
    settings = memory_settings(tmp_path, plugins={"paths": [str(ONE_FILE)]}, platforms={"console": {"prefx": "x"}})
    with pytest.raises(ConfigError) as err:
        Runtime(settings)  # type: ignore[arg-type]
    assert "platforms.console.options.prefx: unknown key" in str(err.value)


def test_one_file_plugin_from_the_cli(tmp_path: Path) -> None:
    (tmp_path / "trax.yaml").write_text(
        yaml.safe_dump(
            {"plugins": {"paths": [str(ONE_FILE)]}, "platforms": {"console": {}}, "blobs": {"backend": "memory"}}
        )
    )
    res = _trax(tmp_path, "check", "trax.yaml", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["platforms"] == ["console"]
    rows = json.loads(_trax(tmp_path, "plugins", "-c", "trax.yaml", "--json").stdout)
    mine = [r for r in rows if r["name"] == f"file:{ONE_FILE}"]
    assert mine and mine[0]["provides"] == ["platforms:console"] and "trax_event" in mine[0]["hooks"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise RuntimeError('boom')\n", "failed to import: RuntimeError: boom"),
        ("def broken(:\n", "failed to import: SyntaxError"),
    ],
)
def test_a_broken_one_file_plugin_is_a_config_error(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "broken.py"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        make_plugin_manager(load_settings(None, plugins={"paths": [str(path)]}))
    assert message in str(err.value)
    with pytest.raises(ConfigError) as err:
        make_plugin_manager(load_settings(None, plugins={"paths": [str(tmp_path / "absent.py")]}))
    assert "no such file" in str(err.value)


# --- refusals the registry makes ----------------------------------------------------------------


class DuplicateMemory:
    @hookimpl
    def trax_register_storage(self) -> list[Backend[object]]:
        return [Backend("memory", lambda options, runtime: object())]


class WrongReturn:
    @hookimpl
    def trax_register_storage(self) -> object:
        return {"name": "not a list of Backend"}


class TypoHook:
    @hookimpl
    def trax_register_storages(self) -> list[Backend[object]]:
        return []


class ConfigureRefuses:
    @hookimpl
    def trax_configure(self, settings: object) -> None:
        raise ConfigError("plugin says: set limits.backend to redis")


class RegistrationRaises:
    @hookimpl
    def trax_register_platforms(self) -> list[Backend[object]]:
        raise KeyError("oops")


class FactoryRaises:
    @hookimpl
    def trax_register_platforms(self) -> list[Backend[object]]:
        def factory(options: object, runtime: object) -> object:
            raise OSError("device not ready")

        return [Backend("fragile", factory)]


def test_a_failing_factory_or_registration_names_the_plugin(tmp_path: Path) -> None:
    settings = memory_settings(tmp_path, platforms={"fragile": {}})
    with pytest.raises(ConfigError) as err:
        Runtime(settings, make_plugin_manager(settings, extra_plugins=[FactoryRaises()]))  # type: ignore[arg-type]
    assert "platforms.fragile: backend 'fragile' could not be built: OSError: device not ready" in str(err.value)
    with pytest.raises(ConfigError) as err:
        Runtime(settings, make_plugin_manager(settings, extra_plugins=[RegistrationRaises()]))  # type: ignore[arg-type]
    assert "trax_register_platforms failed: KeyError" in str(err.value)


def test_a_broken_installed_package_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "trax_broken_plugin").mkdir(parents=True)
    (site / "trax_broken_plugin" / "__init__.py").write_text("import a_module_that_does_not_exist\n")
    dist = site / "trax_broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: trax-broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[trax]\nbroken = trax_broken_plugin\n")
    res = _trax(tmp_path, "check", pythonpath=site)
    assert res.returncode == 1 and "failed to load: ModuleNotFoundError" in res.stderr
    assert "Traceback" not in res.stderr
    (tmp_path / "off.yaml").write_text(yaml.safe_dump({"plugins": {"disabled": ["broken"]}}))
    assert _trax(tmp_path, "check", "off.yaml", pythonpath=site).returncode == 0  # the way out works


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (DuplicateMemory(), "storage backend 'memory' is registered twice"),
        (WrongReturn(), "trax_register_storage must return a list of trax.Backend"),
        (TypoHook(), "unknown hook 'trax_register_storages'"),
        (ConfigureRefuses(), "plugin says: set limits.backend to redis"),
    ],
)
def test_plugin_mistakes_fail_at_start_up(tmp_path: Path, plugin: object, message: str) -> None:
    settings = memory_settings(tmp_path)
    with pytest.raises(ConfigError) as err:
        Runtime(settings, make_plugin_manager(settings, extra_plugins=[plugin]))  # type: ignore[arg-type]
    assert message in str(err.value)


def test_describe_plugins_covers_builtins(tmp_path: Path) -> None:
    rows = {r["name"]: r for r in describe_plugins(make_plugin_manager(None, load_entry_points=False))}
    assert rows["trax.plugins.memory_storage"]["provides"] == ["storage:memory"]
    assert "trax_register_storage" in rows["trax.plugins.sqlite_storage"]["hooks"]


class LeakyFactory:
    @hookimpl
    def trax_register_platforms(self) -> list[Backend[object]]:
        def factory(options: object, runtime: object) -> object:
            raise ValueError("cannot reach postgresql://trax:hunter2@db.internal/trax with sk_live_abcdef123")

        return [Backend("leaky", factory)]


def test_credentials_in_a_plugins_error_are_not_repeated(tmp_path: Path) -> None:
    settings = memory_settings(tmp_path, platforms={"leaky": {}})
    with pytest.raises(ConfigError) as err:
        Runtime(settings, make_plugin_manager(settings, extra_plugins=[LeakyFactory()]))  # type: ignore[arg-type]
    message = str(err.value)
    assert "hunter2" not in message and "sk_live_abcdef123" not in message
    assert "postgresql://***@db.internal/trax" in message  # the rest is kept for the operator
