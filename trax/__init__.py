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

__all__ = ["Backend", "ConfigError", "Settings", "TraxError", "__version__", "hookimpl", "load_settings"]
