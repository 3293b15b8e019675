"""A template trax plugin: the ``snapshot`` storage backend."""

from trax_plugin_template.storage import SnapshotStorage

__all__ = ["SnapshotStorage"]
