"""aid: the owners each open request was passed on to, and the open requests being matched again

Revision ID: 0014_aid_rematch
Revises: 0013_flag_relay
Create Date: 2026-11-30 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import schema.storage
from alembic import op

revision: str = '0014_aid_rematch'
down_revision: str | None = '0013_flag_relay'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('aid_notified',
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('notified_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('request_id', 'owner')
    )
    op.create_table('aid_matching',
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('org_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('district', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
    sa.Column('until', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.Column('due_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('passes', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('request_id')
    )
    with op.batch_alter_table('aid_matching', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aid_matching_due_at'), ['due_at'], unique=False)
    # The owners asked so far were known only from their aid.request events. (Requests
    # already open are not matched again: who asked for them was not kept.)
    op.execute(
        "INSERT INTO aid_notified (request_id, owner, notified_at)"
        " SELECT request_id, provider, min(at) FROM aid_events"
        " WHERE type = 'aid.request' AND provider != ''"
        " GROUP BY request_id, provider"
    )


def downgrade() -> None:
    with op.batch_alter_table('aid_matching', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_aid_matching_due_at'))
    op.drop_table('aid_matching')
    op.drop_table('aid_notified')
