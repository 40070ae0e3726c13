"""aid requests open to the district: AidRequest.provider may be null; AidRequest.location

Revision ID: 0006_aidopen
Revises: 0005_sensors
Create Date: 2026-11-30 18:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006_aidopen'
down_revision: str | None = '0005_sensors'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('aid_requests') as batch:
        batch.alter_column(
            'provider', existing_type=sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True
        )
        batch.add_column(sa.Column('location', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM aid_requests WHERE provider IS NULL"))
    with op.batch_alter_table('aid_requests') as batch:
        batch.drop_column('location')
        batch.alter_column(
            'provider', existing_type=sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False
        )
