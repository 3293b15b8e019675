"""Building the plugin manager and the checked registry of backends it yields."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from trax import hookspecs
from trax.plugin_api import Backend
from trax.plugins import BUILTIN_PLUGINS
from trax.redaction import scrub
from trax.settings import ConfigError, Settings

ENTRY_POINT_GROUP = "trax"

REGISTRATION_HOOKS: dict[str, str] = {
    "storage": "trax_register_storage",
    "rate_limiters": "trax_register_rate_limiters",
    "blob_stores": "trax_register_blob_stores",
    "event_buses": "trax_register_event_buses",
    "platforms": "trax_register_platforms",
    "transports": "trax_register_transports",
    "authenticators": "trax_register_authenticators",
}


def make_plugin_manager(
    settings: Settings | None = None,
    *,
    extra_plugins: Iterable[object] = (),
    load_entry_points: bool = True,
) -> pluggy.PluginManager:
    """A fresh manager: built-ins, installed entry points, then the deployment file's plugins."""
    pm = pluggy.PluginManager("trax")
    pm.add_hookspecs(hookspecs)
    disabled = set(settings.plugins.disabled) if settings else set()
    for name in disabled:
        pm.set_blocked(name)
    for modname in BUILTIN_PLUGINS:
        if modname not in disabled:
            pm.register(importlib.import_module(modname), name=modname)
    if load_entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken installed package must not end in a traceback
            raise ConfigError(
                f"an installed plugin (entry-point group {ENTRY_POINT_GROUP!r}) failed to load: "
                f"{scrub(f'{exc.__class__.__name__}: {exc}')}; disable it with plugins.disabled"
            ) from None
    if settings is not None:
        for modname in settings.plugins.modules:
            try:
                module = importlib.import_module(modname)
            except ImportError as exc:
                raise ConfigError(f"plugins.modules: cannot import {modname!r}: {exc}") from None
            _register(pm, module, modname)
        for path in settings.plugins.paths:
            _register(pm, _load_file(path), f"file:{path}")
    for i, plugin in enumerate(extra_plugins):
        _register(pm, plugin, getattr(plugin, "__name__", None) or f"extra:{i}:{type(plugin).__name__}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"plugin error: {exc}") from None
    return pm


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    if pm.is_blocked(name) or pm.has_plugin(name):
        return
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise ConfigError(f"plugin {name}: {exc}") from None


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ConfigError(f"plugins.paths: no such file: {path}")
    modname = f"trax_file_plugin_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"plugins.paths: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(modname, None)
        raise ConfigError(
            f"plugins.paths: {path} failed to import: {scrub(f'{exc.__class__.__name__}: {exc}')}"
        ) from None
    return module


@dataclass
class Registry:
    """Every registered backend by category and name, checked once."""

    categories: dict[str, dict[str, Backend[Any]]] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)

    def get(self, category: str, name: str, where: str) -> Backend[Any]:
        known = self.categories.get(category, {})
        if name not in known:
            names = ", ".join(sorted(known)) or "(none)"
            raise ConfigError(f"{where}: unknown backend {name!r}; known: {names}")
        return known[name]

    def names(self, category: str) -> list[str]:
        return sorted(self.categories.get(category, {}))


def collect_registry(pm: pluggy.PluginManager) -> Registry:
    reg = Registry()
    for category, hook_name in REGISTRATION_HOOKS.items():
        found: dict[str, Backend[Any]] = {}
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
            try:
                result = impl.function()
            except Exception as exc:
                why = scrub(f"{exc.__class__.__name__}: {exc}")
                raise ConfigError(f"plugin {plugin_name}: {hook_name} failed: {why}") from None
            if not isinstance(result, list) or not all(isinstance(b, Backend) for b in result):
                raise ConfigError(f"plugin {plugin_name}: {hook_name} must return a list of trax.Backend")
            for backend in result:
                if backend.name in found:
                    other = reg.origins[(category, backend.name)]
                    raise ConfigError(
                        f"{category} backend {backend.name!r} is registered twice ({other} and {plugin_name})"
                    )
                found[backend.name] = backend
                reg.origins[(category, backend.name)] = plugin_name
        reg.categories[category] = found
    return reg


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """What is installed and registered, for ``trax plugins``."""
    dists = {id(p): (d.project_name, d.version) for p, d in pm.list_plugin_distinfo()}
    reg = collect_registry(pm)
    out = []
    for name, plugin in pm.list_name_plugin():
        provides = sorted(f"{cat}:{b}" for (cat, b), origin in reg.origins.items() if origin == name)
        dist = dists.get(id(plugin))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        out.append(
            {
                "name": name,
                "distribution": f"{dist[0]} {dist[1]}" if dist else None,
                "builtin": name in BUILTIN_PLUGINS,
                "provides": provides,
                "hooks": hooks,
            }
        )
    return out
