"""The docs cannot drift: every hook and every settings field is documented, and nothing that is gone."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

from pydantic import BaseModel

from trax import hookspecs
from trax.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PLUGINS_MD = ROOT / "docs" / "plugins.md"
CONFIG_MD = ROOT / "docs" / "configuration.md"


def _hookspec_names() -> set[str]:
    """Functions in trax/hookspecs.py decorated with ``@hookspec`` (read from the source, not imported state)."""
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(target, ast.Name) and target.id == "hookspec":
                    names.add(node.name)
    return names


def _doc_sections() -> dict[str, str]:
    text = PLUGINS_MD.read_text()
    parts = re.split(r"^### `(\w+)`\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_hook_is_documented_and_every_documented_hook_exists() -> None:
    specs = _hookspec_names()
    assert specs, "no hookspecs found"
    documented = {name for name in _doc_sections() if name.startswith("trax_")}
    assert not specs - documented, f"hooks missing from docs/plugins.md: {sorted(specs - documented)}"
    assert not documented - specs, f"docs/plugins.md documents hooks that do not exist: {sorted(documented - specs)}"


def test_each_hook_section_says_when_what_which_kind_with_an_example() -> None:
    for name, body in _doc_sections().items():
        if not name.startswith("trax_"):
            continue
        for field in ("**When:**", "**Returns:**", "**Kind:**"):
            assert field in body, f"{name}: no {field}"
        kind = body.split("**Kind:**", 1)[1].splitlines()[0]
        assert "historic" in kind and ("firstresult" in kind or "notification" in kind or "collecting" in kind), name
        assert "```python" in body and name in body.split("```python", 1)[1], f"{name}: no example using it"


def test_hook_kinds_in_the_doc_match_the_specs() -> None:
    # the doc says no hook is firstresult or historic; keep that true
    import pluggy

    pm = pluggy.PluginManager("trax")
    pm.add_hookspecs(hookspecs)
    for name in _hookspec_names():
        opts = getattr(pm.hook, name).spec.opts
        assert not opts.get("firstresult") and not opts.get("historic"), name


def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        path = prefix + name
        out.append(path)
        for t in (info.annotation, *typing.get_args(info.annotation)):
            inner = [t, *typing.get_args(t)]
            for cand in inner:
                if isinstance(cand, type) and issubclass(cand, BaseModel):
                    out += _fields(cand, path + ".")
    return sorted(set(out))


def test_every_settings_field_is_in_the_configuration_reference() -> None:
    text = CONFIG_MD.read_text()
    fields = _fields(Settings)
    assert "server.port" in fields and "ingest.host" in fields
    missing = [f for f in fields if f"`{f}`" not in text]
    assert not missing, f"docs/configuration.md does not document: {missing}"


def test_documented_settings_exist() -> None:
    text = CONFIG_MD.read_text()
    fields = set(_fields(Settings))
    rows = re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.M)
    assert rows
    stale = [r for r in rows if r not in fields]
    assert not stale, f"docs/configuration.md documents settings that do not exist: {stale}"
