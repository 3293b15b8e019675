"""plugins/_template is a working plugin package: copy, install, discover, configure, use, uninstall."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "plugins" / "_template"
DIST = "trax-plugin-template"


def run(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def trax_cli(*args: str, cwd: Path) -> object:
    return json.loads(run(sys.executable, "-m", "trax.cli", *args, "--json", cwd=cwd).stdout)


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "my-plugin"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = (sys.executable, "-m", "pip")
    run(*pip, "install", "--quiet", "--no-deps", "--no-build-isolation", str(copy), cwd=tmp_path)
    try:
        yield copy
    finally:
        subprocess.run([*pip, "uninstall", "--yes", "--quiet", DIST], capture_output=True, timeout=120)


@pytest.mark.slow
def test_template_installs_and_is_used_by_a_deployment(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "deploy"
    work.mkdir()
    plugins = trax_cli("plugins", cwd=work)
    assert isinstance(plugins, list)
    mine = [p for p in plugins if p.get("distribution") and DIST in str(p["distribution"])]
    assert mine and any("snapshot" in str(p["provides"]) for p in mine), plugins

    snapshot = work / "data" / "trax.json"
    config = work / "trax.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"backend": "snapshot", "options": {"path": str(snapshot)}},
                "security": {"secret_key_file": str(work / "secret.key")},
            }
        )
    )
    checked = trax_cli("check", "-c", str(config), cwd=work)
    assert isinstance(checked, dict) and checked["storage"] == "snapshot"
    trax_cli("accounts", "create", "acme", "-c", str(config), cwd=work)
    # a second process reads what the first one stored through the plugin
    accounts = trax_cli("accounts", "list", "-c", str(config), cwd=work)
    assert [a["name"] for a in accounts] == ["acme"]  # type: ignore[union-attr]
    assert json.loads(snapshot.read_text())["rows"]

    # the template's own tests (trax.testing's storage conformance suite) pass from the copy
    run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=installed)
