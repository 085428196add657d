"""Ideas to product: product feedback quoting customers, themes with a status, and shipped notices

Revision ID: 0680
Revises: 0670
Create Date: 2026-12-01

`productfeedback` marks a concern as feedback on a product, quoting one of its customer's messages verbatim
with that message's id; `ideatheme` groups feedback per product with product management's status; `ideanotice`
records that a concern's customer was told its theme shipped, once per theme and concern.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types

revision = "0680"
down_revision = "0670"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = registry.types.UTCDateTime(timezone=True)
    s = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "ideatheme",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product", s(length=100), nullable=False),
        sa.Column("name", s(length=200), nullable=False),
        sa.Column("status", s(length=20), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("product", "name"),
    )
    op.create_table(
        "productfeedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("concern_id", s(length=20), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("product", s(length=100), nullable=False),
        sa.Column("kind", s(length=20), nullable=False),
        sa.Column("theme_id", sa.Integer(), nullable=True),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("by_user_id", sa.Integer(), nullable=True),
        sa.Column("by_name", s(length=200), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["theme_id"], ["ideatheme.id"]),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("concern_id", "interaction_id"),
    )
    op.create_index("ix_productfeedback_concern_id", "productfeedback", ["concern_id"])
    op.create_index("ix_productfeedback_theme_id", "productfeedback", ["theme_id"])
    op.create_index("ix_productfeedback_product", "productfeedback", ["product", "created_at"])
    op.create_table(
        "ideanotice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("theme_id", sa.Integer(), nullable=False),
        sa.Column("concern_id", s(length=20), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(["theme_id"], ["ideatheme.id"]),
        sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("theme_id", "concern_id"),
    )


def downgrade() -> None:
    op.drop_table("ideanotice")
    op.drop_index("ix_productfeedback_product", table_name="productfeedback")
    op.drop_index("ix_productfeedback_theme_id", table_name="productfeedback")
    op.drop_index("ix_productfeedback_concern_id", table_name="productfeedback")
    op.drop_table("productfeedback")
    op.drop_table("ideatheme")
