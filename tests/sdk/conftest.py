from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, dev_config
from trax.domain.scopes import ALL_SCOPES


@dataclass
class Remote:
    server: ServerProcess
    key: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def new_key(self, *scopes: str, name: str = "extra") -> str:
        args = ["keys", "create", "--account", "acme", "--name", name]
        for scope in scopes:
            args += ["--scope", scope]
        return str(self.server.cli_json(*args)["secret"])


REPO = Path(__file__).resolve().parents[2]


def _start(tmp: Path, **sections: object) -> Iterator[Remote]:
    config = dev_config(tmp, **sections)
    # the checkout first on the path: the server runs from a temp dir and must import this trax
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with ServerProcess(config, tmp, env=env) as server:
        server.cli("accounts", "create", "acme")
        remote = Remote(server, "")
        remote.key = remote.new_key(*sorted(ALL_SCOPES), name="admin")
        yield remote


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """One real `trax serve` (SQLite, filesystem blobs) for a module, with an all-scopes key."""
    yield from _start(tmp_path_factory.mktemp("sdk-server"))
