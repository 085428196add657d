"""Alembic environment: migrations run against the connection or URL that `registry.migrate` passes in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import registry.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from registry.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _include(obj, name, type_, reflected, compare_to) -> bool:
    # Full-text search objects are created by hand in migrations and are not in the models.
    return not (name and (name.endswith("_fts") or "_fts_" in name or name == "search_vector"
                          or name.startswith("ix_") and name.endswith("_search_vector")))


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
