"""The built-in plugins. They register through the same hooks a third party uses."""

BUILTIN_PLUGINS: tuple[str, ...] = (
    "trax.plugins.memory_storage",
    "trax.plugins.sqlite_storage",
    "trax.plugins.memory_limits",
    "trax.plugins.blob_stores",
    "trax.plugins.memory_bus",
    "trax.plugins.loopback_platform",
    "trax.plugins.api_keys",
    "trax.ingest.rtmp.plugin",
    "trax.ingest.srt.plugin",
    "trax.ingest.whip.plugin",
)
