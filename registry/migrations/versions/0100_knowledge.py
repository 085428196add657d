"""knowledge base: articles, revisions and their full-text index

Revision ID: 0100
Revises: 0001
Create Date: 2026-11-27

SQLite gets an external-content FTS5 table kept in step by triggers; PostgreSQL gets a generated,
weighted tsvector column with a GIN index. Neither is in the SQLModel metadata, so autogenerate must
not be trusted on them, and a later SQLite batch migration of `article` must recreate the triggers
(batch mode copies the table, which drops them).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types  # noqa: F401


revision = "0100"
down_revision = "0001"
branch_labels = ("knowledge",)
depends_on = None

# Columns of the index, weighted as the search ranks them: title, then body, then category and tags.
_SQLITE_COLUMNS = "title, body, category, tags"

_SQLITE_UP = [
    f"""CREATE VIRTUAL TABLE article_fts USING fts5(
        {_SQLITE_COLUMNS}, content='article', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
    )""",
    f"""CREATE TRIGGER article_fts_insert AFTER INSERT ON article BEGIN
        INSERT INTO article_fts(rowid, {_SQLITE_COLUMNS}) VALUES (new.id, new.title, new.body, new.category, new.tags);
    END""",
    f"""CREATE TRIGGER article_fts_delete AFTER DELETE ON article BEGIN
        INSERT INTO article_fts(article_fts, rowid, {_SQLITE_COLUMNS})
        VALUES ('delete', old.id, old.title, old.body, old.category, old.tags);
    END""",
    f"""CREATE TRIGGER article_fts_update AFTER UPDATE OF {_SQLITE_COLUMNS} ON article BEGIN
        INSERT INTO article_fts(article_fts, rowid, {_SQLITE_COLUMNS})
        VALUES ('delete', old.id, old.title, old.body, old.category, old.tags);
        INSERT INTO article_fts(rowid, {_SQLITE_COLUMNS}) VALUES (new.id, new.title, new.body, new.category, new.tags);
    END""",
    # Index rows that existed before this revision (none on a fresh registry, but a rebuild is cheap).
    "INSERT INTO article_fts(article_fts) VALUES ('rebuild')",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS article_fts_update",
    "DROP TRIGGER IF EXISTS article_fts_delete",
    "DROP TRIGGER IF EXISTS article_fts_insert",
    "DROP TABLE IF EXISTS article_fts",
]

_POSTGRESQL_UP = [
    """ALTER TABLE article ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A')
        || setweight(to_tsvector('english', coalesce(body, '')), 'B')
        || setweight(to_tsvector('english', coalesce(category, '') || ' ' || coalesce(tags::text, '')), 'C')
    ) STORED""",
    "CREATE INDEX ix_article_search_vector ON article USING gin (search_vector)",
]
_POSTGRESQL_DOWN = [
    "DROP INDEX IF EXISTS ix_article_search_vector",
    "ALTER TABLE article DROP COLUMN IF EXISTS search_vector",
]


def upgrade() -> None:
    op.create_table(
        "article",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("owner_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_concern_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("created_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", registry.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["source_concern_id"], ["concern.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_article_source_concern_id"), ["source_concern_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_article_status"), ["status"], unique=False)

    op.create_table(
        "articlerevision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("edited_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("created_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["article.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("article_id", "version"),
    )
    with op.batch_alter_table("articlerevision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_articlerevision_article_id"), ["article_id"], unique=False)

    statements = _POSTGRESQL_UP if op.get_bind().dialect.name == "postgresql" else _SQLITE_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = _POSTGRESQL_DOWN if op.get_bind().dialect.name == "postgresql" else _SQLITE_DOWN
    for statement in statements:
        op.execute(statement)

    with op.batch_alter_table("articlerevision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_articlerevision_article_id"))
    op.drop_table("articlerevision")

    with op.batch_alter_table("article", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_article_status"))
        batch_op.drop_index(batch_op.f("ix_article_source_concern_id"))
        batch_op.drop_index(batch_op.f("ix_article_category"))
    op.drop_table("article")
