"""The template plugin's own tests: trax's storage conformance suite, discovery and durability."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from trax_plugin_template import SnapshotStorage

import trax
from trax.plugin_manager import collect_registry, make_plugin_manager
from trax.testing.storage import StorageConformance


class TestSnapshotConformance(StorageConformance):
    # two live instances over one file do not see each other's writes (single process only)
    durable = False

    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> Callable[[], SnapshotStorage]:
        return lambda: SnapshotStorage(tmp_path / "snapshot.json")


def test_found_through_the_entry_point() -> None:
    registry = collect_registry(make_plugin_manager())
    assert "snapshot" in registry.names("storage")


def test_data_survive_a_restart(tmp_path: Path) -> None:
    config = {
        "storage": {"backend": "snapshot", "options": {"path": str(tmp_path / "data.json")}},
        "security": {"secret_key": "template-test-" + "x" * 40},
        "public_api": {"write_enabled": True},
    }
    with trax.connect(config, account="acme") as p:
        made = p.studios.create(name="kept").id
    with trax.connect(config, account="acme") as p:
        assert [s.id for s in p.studios.list()] == [made]


def test_mistyped_option_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(trax.ConfigError, match=r"storage\.options\.pth"):
        trax.connect({"storage": {"backend": "snapshot", "options": {"pth": "x.json"}}})
