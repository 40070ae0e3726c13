"""mutual aid: the cases a node is a party to, and the steps it applied

Revision ID: 0004_aid
Revises: 0003
Create Date: 2026-11-30 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

import schema.storage
from alembic import op


revision: str = '0004_aid'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('aid_cases',
    sa.Column('request_id', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=12), nullable=False),
    sa.Column('requester', sa.String(length=12), nullable=False),
    sa.Column('provider', sa.String(length=12), nullable=False),
    sa.Column('resource_id', sa.String(length=200), nullable=True),
    sa.Column('resource_kind', sa.String(length=40), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('reusable', sa.Boolean(), nullable=False),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('offered', sa.Integer(), nullable=True),
    sa.Column('committed', sa.Integer(), nullable=False),
    sa.Column('received', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('disclosure', sa.JSON(), nullable=True),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('created_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('request_id')
    )
    with op.batch_alter_table('aid_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aid_cases_status'), ['status'], unique=False)

    op.create_table('aid_messages',
    sa.Column('message_id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.Column('received_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('message_id')
    )
    with op.batch_alter_table('aid_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aid_messages_request_id'), ['request_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('aid_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_aid_messages_request_id'))
    op.drop_table('aid_messages')
    with op.batch_alter_table('aid_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_aid_cases_status'))
    op.drop_table('aid_cases')
