"""The production example uses the scale-out backends, with secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from trax.runtime import Runtime
from trax.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "production.example.yaml"


def test_production_example_chooses_postgres_and_redis_without_secrets_in_the_file() -> None:
    text = EXAMPLE.read_text()
    for line in text.splitlines():
        if not line.lstrip().startswith("#"):
            assert "postgresql://" not in line and "redis://" not in line
    s = load_settings(EXAMPLE)
    assert (s.storage.backend, s.limits.backend, s.events.backend) == ("postgres", "redis", "redis")


def test_dsn_and_urls_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAX_STORAGE__OPTIONS__DSN", "postgresql://trax:pg-hunter2@db.internal:5432/trax")
    monkeypatch.setenv("TRAX_LIMITS__OPTIONS__URL", "redis://:rl-hunter2@cache.internal:6379/0")
    monkeypatch.setenv("TRAX_EVENTS__OPTIONS__URL", "redis://:ev-hunter2@cache.internal:6379/1")
    monkeypatch.setenv("TRAX_SECURITY__SECRET_KEY", "k" * 48)
    # the example's TLS listeners need certificate files this machine does not have
    no_tls = {name: {"enabled": False} for name in ("rtmp", "rtmps", "srt", "whip")}
    rt = Runtime(load_settings(EXAMPLE, ingest=no_tls))  # builds and validates every backend; opens nothing
    assert rt.storage._o.dsn.get_secret_value().endswith("@db.internal:5432/trax")  # type: ignore[attr-defined]
    assert rt.storage._o.max_size == 20  # type: ignore[attr-defined]  (file values kept beside the env one)
    assert rt.limiter_options.url.get_secret_value().startswith("redis://:rl-hunter2@")  # type: ignore[attr-defined]
    assert rt.bus._o.url.get_secret_value().endswith("/1")  # type: ignore[attr-defined]
    shown = repr(rt.storage) + repr(rt.limiter) + repr(rt.bus) + repr(rt.limiter_options) + repr(rt.describe())
    assert "hunter2" not in shown
