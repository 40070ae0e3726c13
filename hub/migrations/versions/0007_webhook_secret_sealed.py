"""webhook secrets sealed at rest: room for enc:v1: and a Fernet token

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 14:10:00.000000
"""

from collections.abc import Sequence

import sqlmodel

from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('flag_webhooks', schema=None) as batch_op:
        batch_op.alter_column(
            'secret',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=100),
            type_=sqlmodel.sql.sqltypes.AutoString(length=500),
            existing_nullable=False,
        )


def downgrade() -> None:
    # Sealed secrets do not fit in 100 characters: run this only on plain-text rows.
    with op.batch_alter_table('flag_webhooks', schema=None) as batch_op:
        batch_op.alter_column(
            'secret',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=500),
            type_=sqlmodel.sql.sqltypes.AutoString(length=100),
            existing_nullable=False,
        )
