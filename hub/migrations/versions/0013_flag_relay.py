"""flags below: how far a city hub has copied each district hub's flag events

Revision ID: 0013_flag_relay
Revises: 0012_aidvolunteers
Create Date: 2026-11-30 20:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import schema.storage
from alembic import op


revision: str = '0013_flag_relay'
down_revision: str | None = '0012_aidvolunteers'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('flag_relay_cursors',
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source')
    )


def downgrade() -> None:
    op.drop_table('flag_relay_cursors')
