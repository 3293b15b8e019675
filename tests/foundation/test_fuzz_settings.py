"""Any deployment file is either accepted or refused with a ConfigError: never another exception."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trax.runtime import Runtime
from trax.settings import ConfigError, load_settings

scalars = st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False) | st.text(max_size=12)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)
# Sections whose building touches no file outside the working directory (security and plugins.paths
# would: their own tests cover them).
section_keys = {
    "server": st.sampled_from(["host", "port", "public_url", "max_body_bytes", "access_log", "certfile", "x"]),
    "storage": st.sampled_from(["backend", "options"]),
    "limits": st.sampled_from(["backend", "options", "route_costs", "meta_capacity", "meta_refill_per_second"]),
    "blobs": st.sampled_from(["backend", "options"]),
    "events": st.sampled_from(["backend", "options"]),
    "public_api": st.sampled_from(["write_enabled", "keys_writable_when_disabled", "session_tokens_enabled"]),
    "media": st.sampled_from(["max_upload_bytes", "allowed_content_types", "upload_ttl_seconds"]),
}
backend_names = st.sampled_from(["memory", "sqlite", "filesystem", "nope", ""])


@st.composite
def documents(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from([*section_keys, "platforms", "log_level", "bogus"]), max_size=4)):
        if section == "platforms":
            doc[section] = draw(st.dictionaries(st.sampled_from(["loopback", "nope"]), values, max_size=2))
        elif section in ("log_level", "bogus"):
            doc[section] = draw(values)
        elif draw(st.booleans()):
            doc[section] = draw(values)  # the wrong shape altogether
        else:
            keys = draw(st.lists(section_keys[section], max_size=3))
            doc[section] = {k: draw(backend_names if k == "backend" else values) for k in keys}
    return doc


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load_and_build(path: Path) -> None:
    try:
        s = load_settings(path, security={"secret_key": "fuzz-secret-" + "x" * 40})
        Runtime(s)
    except ConfigError as exc:
        assert str(exc)


@FUZZ
@given(doc=documents())
def test_structured_documents(doc: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        path = Path(tmp) / "trax.yaml"
        path.write_text(yaml.safe_dump(doc))
        _load_and_build(path)
        assert sorted(os.listdir(tmp)) == ["trax.yaml"]  # building opened nothing, created nothing


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("abc:{}[]-,\n \t'\"&*!|>%@`#0.")), max_size=80))
def test_arbitrary_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        path = Path(tmp) / "trax.yaml"
        path.write_text(text)
        _load_and_build(path)
