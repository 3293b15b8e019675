"""Registers the ``postgres`` storage backend (entry point group ``trax``)."""

from __future__ import annotations

from typing import Any

from trax.interfaces import Storage
from trax.plugin_api import Backend, hookimpl
from trax_postgres.storage import PostgresOptions, PostgresStorage


def _factory(options: Any, runtime: Any) -> Storage:
    return PostgresStorage(options)


@hookimpl
def trax_register_storage() -> list[Backend[Storage]]:
    return [
        Backend(
            "postgres",
            _factory,
            PostgresOptions,
            description="PostgreSQL through an asyncpg pool; shared by any number of server processes.",
        )
    ]
