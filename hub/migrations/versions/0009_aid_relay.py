"""mutual aid: the district's cases, their events, seen step messages; node outbox paths

Revision ID: 0009_aid
Revises: 0008_sitrep
Create Date: 2026-11-30 17:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import schema.storage
from alembic import op


revision: str = '0009_aid'
down_revision: str | None = '0008_sitrep'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('aid_cases',
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('requester', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('resource_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('resource_kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('committed', sa.Integer(), nullable=False),
    sa.Column('received', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('requested_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_offer_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.Column('committed_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.Column('received_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('request_id')
    )
    with op.batch_alter_table('aid_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aid_cases_requester'), ['requester'], unique=False)
        batch_op.create_index(batch_op.f('ix_aid_cases_provider'), ['provider'], unique=False)
        batch_op.create_index(batch_op.f('ix_aid_cases_resource_kind'), ['resource_kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_aid_cases_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_aid_cases_requested_at'), ['requested_at'], unique=False)

    op.create_table('aid_inbox_messages',
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('received_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('message_id')
    )
    op.create_table('aid_events',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('requester', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('resource_kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('aid_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aid_events_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_aid_events_requester'), ['requester'], unique=False)
        batch_op.create_index(batch_op.f('ix_aid_events_provider'), ['provider'], unique=False)
        batch_op.create_index(batch_op.f('ix_aid_events_at'), ['at'], unique=False)
    op.bulk_insert(
        sa.table('flag_event_sequence', sa.column('name', sa.String), sa.column('last_seq', sa.BigInteger), sa.column('pruned_through', sa.BigInteger)),
        [{'name': 'aid_events', 'last_seq': 0, 'pruned_through': 0}],
    )
    # The node outbox carries aid steps too: each row says where the node takes it.
    with op.batch_alter_table('flag_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False, server_default='/flags/updates'))


def downgrade() -> None:
    with op.batch_alter_table('flag_outbox', schema=None) as batch_op:
        batch_op.drop_column('path')
    op.execute("DELETE FROM flag_event_sequence WHERE name = 'aid_events'")
    op.drop_table('aid_events')
    op.drop_table('aid_inbox_messages')
    op.drop_table('aid_cases')
