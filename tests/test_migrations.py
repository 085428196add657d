"""Alembic migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import registry.tables  # noqa: F401
from registry.db import make_engine
from registry.migrate import current_heads


def test_upgraded_schema_matches_the_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = [d for d in compare_metadata(context, SQLModel.metadata)
                    if not _fulltext(d)]
    finally:
        engine.dispose()
    assert diff == []
    assert current_heads(database_url)  # at the newest revision of every branch


def _fulltext(diff) -> bool:
    text = repr(diff)
    return "_fts" in text or "search_vector" in text
