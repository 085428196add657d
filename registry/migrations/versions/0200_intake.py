"""intake: stored files, attachments, raw inbound mail and ratings

Revision ID: 0200
Revises: 0001
Create Date: 2026-11-27

File bytes (attachments and raw mails alike) are kept once per SHA-256 in `stored_file`, in the
registry rather than on a local disk, so every web process and the SMTP listener see the same files.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import registry.types  # noqa: F401


revision = "0200"
down_revision = "0001"
branch_labels = ("intake",)
depends_on = None


def upgrade() -> None:
    op.create_table('stored_file',
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', registry.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    op.create_table('rating',
    sa.Column('concern_id', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('csat', sa.Integer(), nullable=False),
    sa.Column('nps', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', registry.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['concern_id'], ['concern.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('concern_id')
    )
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rating_customer_id'), ['customer_id'], unique=False)

    op.create_table('raw_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
    sa.Column('from_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('concern_id', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('interaction_id', sa.Integer(), nullable=True),
    sa.Column('received_at', registry.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['concern_id'], ['concern.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], ),
    sa.ForeignKeyConstraint(['sha256'], ['stored_file.sha256'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256')
    )
    with op.batch_alter_table('raw_mail', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_raw_mail_concern_id'), ['concern_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_raw_mail_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_raw_mail_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_raw_mail_status'), ['status'], unique=False)

    op.create_table('attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('concern_id', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('interaction_id', sa.Integer(), nullable=True),
    sa.Column('raw_mail_id', sa.Integer(), nullable=True),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_at', registry.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['concern_id'], ['concern.id'], ),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], ),
    sa.ForeignKeyConstraint(['raw_mail_id'], ['raw_mail.id'], ),
    sa.ForeignKeyConstraint(['sha256'], ['stored_file.sha256'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_concern_id'), ['concern_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_interaction_id'), ['interaction_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_raw_mail_id'), ['raw_mail_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_raw_mail_id'))
        batch_op.drop_index(batch_op.f('ix_attachment_interaction_id'))
        batch_op.drop_index(batch_op.f('ix_attachment_customer_id'))
        batch_op.drop_index(batch_op.f('ix_attachment_concern_id'))

    op.drop_table('attachment')
    with op.batch_alter_table('raw_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_raw_mail_status'))
        batch_op.drop_index(batch_op.f('ix_raw_mail_message_id'))
        batch_op.drop_index(batch_op.f('ix_raw_mail_customer_id'))
        batch_op.drop_index(batch_op.f('ix_raw_mail_concern_id'))

    op.drop_table('raw_mail')
    with op.batch_alter_table('rating', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rating_customer_id'))

    op.drop_table('rating')
    op.drop_table('stored_file')
