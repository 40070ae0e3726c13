"""aid requests for volunteers: skill and window, volunteers offered, bookings

Revision ID: 0007_aidvolunteers
Revises: 0006_aidopen
Create Date: 2026-11-30 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import schema.storage
from alembic import op

revision: str = '0007_aidvolunteers'
down_revision: str | None = '0006_aidopen'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('aid_requests') as batch:
        batch.add_column(
            sa.Column('skill', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        )
        batch.add_column(
            sa.Column('window_from', schema.storage.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column('window_to', schema.storage.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table('aid_cases') as batch:
        batch.add_column(sa.Column('skill', sa.String(length=40), nullable=True))
        batch.add_column(
            sa.Column('window_from', schema.storage.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column('window_to', schema.storage.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column('volunteer_ids', sa.JSON(), nullable=True))
    op.create_table('aid_volunteer_bookings',
    sa.Column('volunteer_id', sa.String(length=200), nullable=False),
    sa.Column('request_id', sa.String(length=200), nullable=False),
    sa.Column('window_from', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_to', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('booked_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('volunteer_id', 'request_id')
    )
    op.create_index(
        'ix_aid_volunteer_bookings_request_id', 'aid_volunteer_bookings', ['request_id']
    )


def downgrade() -> None:
    op.drop_index('ix_aid_volunteer_bookings_request_id', table_name='aid_volunteer_bookings')
    op.drop_table('aid_volunteer_bookings')
    with op.batch_alter_table('aid_cases') as batch:
        batch.drop_column('volunteer_ids')
        batch.drop_column('window_to')
        batch.drop_column('window_from')
        batch.drop_column('skill')
    op.execute(sa.text("DELETE FROM aid_requests WHERE resource_kind = 'volunteers'"))
    with op.batch_alter_table('aid_requests') as batch:
        batch.drop_column('window_to')
        batch.drop_column('window_from')
        batch.drop_column('skill')
