"""List-valued settings from the environment: a JSON list or comma-separated values (docs/configuration.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import memory_settings
from trax.runtime import Runtime
from trax.settings import ConfigError, load_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("TRAX_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("value", ['["10.0.0.1", "192.0.2.7"]', "10.0.0.1,192.0.2.7", " 10.0.0.1 , 192.0.2.7 ,"])
def test_a_transport_list_option_from_the_environment(env: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    env.setenv("TRAX_INGEST__WHIP__HOST_CANDIDATES", value)
    rt = Runtime(memory_settings(tmp_path, ingest={"whip": {"enabled": True, "port": 0}}))  # type: ignore[arg-type]
    assert rt.transports["whip"].options.host_candidates == ["10.0.0.1", "192.0.2.7"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ['["video/mp4","audio/aac"]', "video/mp4,audio/aac"])
def test_a_core_list_setting_from_the_environment(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("TRAX_MEDIA__ALLOWED_CONTENT_TYPES", value)
    assert load_settings(None).media.allowed_content_types == ["video/mp4", "audio/aac"]


def test_a_broken_json_list_names_the_variable(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("TRAX_INGEST__WHIP__HOST_CANDIDATES", '["10.0.0.1"')
    with pytest.raises(ConfigError, match="host_candidates"):
        Runtime(memory_settings(tmp_path, ingest={"whip": {"enabled": True, "port": 0}}))  # type: ignore[arg-type]
