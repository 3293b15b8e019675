"""trax: live-streaming studios as a library, a server and a plugin system."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trax")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

from trax.domain.errors import TraxError
from trax.plugin_api import Backend, hookimpl
from trax.settings import ConfigError, Settings, load_settings

__all__ = [
    "AsyncClient",
    "Backend",
    "Client",
    "ConfigError",
    "Settings",
    "TraxError",
    "__version__",
    "connect",
    "hookimpl",
    "load_settings",
]

_LAZY = {"connect": "trax.notebook", "Client": "trax.client", "AsyncClient": "trax.client"}


def __getattr__(name: str) -> object:
    # the SDK pulls in httpx and the runtime; keep `import trax` cheap until they are used
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trax' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
