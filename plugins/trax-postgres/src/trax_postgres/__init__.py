"""PostgreSQL storage for trax (the ``postgres`` storage backend)."""

from trax_postgres.storage import PostgresOptions, PostgresStorage

__all__ = ["PostgresOptions", "PostgresStorage"]
