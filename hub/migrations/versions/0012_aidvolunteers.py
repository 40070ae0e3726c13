"""aid requests for volunteers: skill, window and the volunteers offered, at the hub

Revision ID: 0012_aidvolunteers
Revises: 0011_sensors
Create Date: 2026-11-30 20:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import schema.storage
from alembic import op

revision: str = '0012_aidvolunteers'
down_revision: str | None = '0011_sensors'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('aid_cases') as batch:
        batch.add_column(
            sa.Column('skill', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)
        )
        batch.add_column(
            sa.Column('window_from', schema.storage.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column('window_to', schema.storage.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column('volunteer_ids', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('aid_cases') as batch:
        batch.drop_column('volunteer_ids')
        batch.drop_column('window_to')
        batch.drop_column('window_from')
        batch.drop_column('skill')
