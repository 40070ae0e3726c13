"""audit anchors: the hashes of each source's audit chain the hub witnessed

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_anchors',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('hub_seq', sa.BigInteger(), nullable=False),
    sa.Column('mac', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('source', 'seq')
    )


def downgrade() -> None:
    op.drop_table('audit_anchors')
