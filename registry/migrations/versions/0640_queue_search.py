"""workspace: full-text search of concerns and customers for the queue, and notices to agents

Revision ID: 0640
Revises: 0630
Create Date: 2026-12-03

`concern_search` holds one document per concern (the suffixes of its id's code, its subject and the
customer's first message, written by intake); customers are indexed by name and e-mail. SQLite gets FTS5
tables kept in step by triggers (external content, so the words are stored once); PostgreSQL gets
generated tsvector columns with GIN indexes. None of these are in the SQLModel metadata, and a later
SQLite batch migration of `customer` or `concern_search` must recreate the triggers (a batch copies
the table, which drops them). `agent_notice` keeps what a member of staff should see on their queue
(a lead's reassignment) until they dismiss it.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types

revision = "0640"
down_revision = "0630"
branch_labels = None
depends_on = None

_TOKENIZE = "tokenize='unicode61 remove_diacritics 2'"

_SQLITE_UP = [
    f"CREATE VIRTUAL TABLE concern_fts USING fts5(document, content='concern_search', content_rowid='id', {_TOKENIZE})",
    """CREATE TRIGGER concern_fts_insert AFTER INSERT ON concern_search BEGIN
        INSERT INTO concern_fts(rowid, document) VALUES (new.id, new.document);
    END""",
    """CREATE TRIGGER concern_fts_delete AFTER DELETE ON concern_search BEGIN
        INSERT INTO concern_fts(concern_fts, rowid, document) VALUES ('delete', old.id, old.document);
    END""",
    """CREATE TRIGGER concern_fts_update AFTER UPDATE OF document ON concern_search BEGIN
        INSERT INTO concern_fts(concern_fts, rowid, document) VALUES ('delete', old.id, old.document);
        INSERT INTO concern_fts(rowid, document) VALUES (new.id, new.document);
    END""",
    f"CREATE VIRTUAL TABLE customer_fts USING fts5(name, email, content='customer', content_rowid='id', {_TOKENIZE})",
    """CREATE TRIGGER customer_fts_insert AFTER INSERT ON customer BEGIN
        INSERT INTO customer_fts(rowid, name, email) VALUES (new.id, new.name, new.email);
    END""",
    """CREATE TRIGGER customer_fts_delete AFTER DELETE ON customer BEGIN
        INSERT INTO customer_fts(customer_fts, rowid, name, email) VALUES ('delete', old.id, old.name, old.email);
    END""",
    """CREATE TRIGGER customer_fts_update AFTER UPDATE OF name, email ON customer BEGIN
        INSERT INTO customer_fts(customer_fts, rowid, name, email) VALUES ('delete', old.id, old.name, old.email);
        INSERT INTO customer_fts(rowid, name, email) VALUES (new.id, new.name, new.email);
    END""",
    "INSERT INTO concern_fts(concern_fts) VALUES ('rebuild')",
    "INSERT INTO customer_fts(customer_fts) VALUES ('rebuild')",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS customer_fts_update",
    "DROP TRIGGER IF EXISTS customer_fts_delete",
    "DROP TRIGGER IF EXISTS customer_fts_insert",
    "DROP TABLE IF EXISTS customer_fts",
    "DROP TRIGGER IF EXISTS concern_fts_update",
    "DROP TRIGGER IF EXISTS concern_fts_delete",
    "DROP TRIGGER IF EXISTS concern_fts_insert",
    "DROP TABLE IF EXISTS concern_fts",
]

# E-mail addresses are split into words as SQLite's tokenizer splits them (PostgreSQL keeps one token).
_POSTGRESQL_UP = [
    """ALTER TABLE concern_search ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('simple', document)) STORED""",
    "CREATE INDEX ix_concern_search_search_vector ON concern_search USING gin (search_vector)",
    """ALTER TABLE customer ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (to_tsvector('simple',
        coalesce(name, '') || ' ' || regexp_replace(coalesce(email, ''), '[^[:alnum:]]+', ' ', 'g'))) STORED""",
    "CREATE INDEX ix_customer_search_vector ON customer USING gin (search_vector)",
]
_POSTGRESQL_DOWN = [
    "DROP INDEX IF EXISTS ix_customer_search_vector",
    "ALTER TABLE customer DROP COLUMN IF EXISTS search_vector",
    "DROP INDEX IF EXISTS ix_concern_search_search_vector",
    "ALTER TABLE concern_search DROP COLUMN IF EXISTS search_vector",
]


def _backfill(bind) -> None:
    """Search documents for the concerns registered before this revision, from their first customer message."""
    from registry.concern_search import search_document

    first: dict[str, str] = {}
    messages = bind.execute(sa.text(
        "SELECT concern_id, body FROM interaction WHERE kind = 'customer_message' AND concern_id IS NOT NULL "
        "ORDER BY concern_id, created_at DESC, id DESC"))
    for concern_id, body in messages:
        first[concern_id] = body or ""  # the last one written per concern is its oldest
    rows = []
    table = sa.table("concern_search", sa.column("concern_id"), sa.column("document"))
    for concern_id, subject in bind.execute(sa.text("SELECT id, subject FROM concern")):
        rows.append({"concern_id": concern_id,
                     "document": search_document(concern_id=concern_id, subject=subject or "",
                                                 body=first.get(concern_id, ""))})
        if len(rows) == 5000:
            bind.execute(sa.insert(table), rows)
            rows = []
    if rows:
        bind.execute(sa.insert(table), rows)


def upgrade() -> None:
    op.create_table(
        "concern_search",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("concern_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("concern_id"),
    )
    op.create_table(
        "agent_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("concern_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", registry.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dismissed_at", registry.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_agent_notice_user", "agent_notice", ["user_id", "dismissed_at", "id"])
    bind = op.get_bind()
    _backfill(bind)
    for statement in _POSTGRESQL_UP if bind.dialect.name == "postgresql" else _SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    for statement in _POSTGRESQL_DOWN if op.get_bind().dialect.name == "postgresql" else _SQLITE_DOWN:
        op.execute(statement)
    op.drop_index("ix_agent_notice_user", table_name="agent_notice")
    op.drop_table("agent_notice")
    op.drop_table("concern_search")
