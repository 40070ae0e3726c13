"""sitrep: situation reports, their versions, and initial reports missed

Revision ID: 0008_sitrep
Revises: 0007
Create Date: 2026-11-30 17:03:36.439698
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import schema.storage
from alembic import op


revision: str = '0008_sitrep'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('situation_report_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('submitted_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('received_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.Column('forward_next_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.Column('forward_attempts', sa.Integer(), nullable=False),
    sa.Column('forward_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('forwarded_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('report_id', 'version')
    )
    with op.batch_alter_table('situation_report_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_situation_report_versions_forward_next_at'), ['forward_next_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_situation_report_versions_report_id'), ['report_id'], unique=False)

    op.create_table('situation_reports_missed',
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('incident_owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('due_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('escalated_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('escalated_to', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('incident_id')
    )
    op.create_table('situation_reports',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('origin_district', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('incident_owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('incident_title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('incident_started_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('basis', sa.JSON(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('submitted_revision', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('due_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalated_to', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', schema.storage.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', schema.storage.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('situation_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_situation_reports_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_situation_reports_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_situation_reports_origin'), ['origin'], unique=False)
        batch_op.create_index(batch_op.f('ix_situation_reports_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('situation_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_situation_reports_status'))
        batch_op.drop_index(batch_op.f('ix_situation_reports_origin'))
        batch_op.drop_index(batch_op.f('ix_situation_reports_incident_id'))
        batch_op.drop_index(batch_op.f('ix_situation_reports_due_at'))

    op.drop_table('situation_reports')
    op.drop_table('situation_reports_missed')
    with op.batch_alter_table('situation_report_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_situation_report_versions_report_id'))
        batch_op.drop_index(batch_op.f('ix_situation_report_versions_forward_next_at'))

    op.drop_table('situation_report_versions')
