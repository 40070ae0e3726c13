"""The node's tables: every record type of the common schema, emergencies and the audit log."""

from __future__ import annotations

import sqlalchemy as sa

from policies.audit import define_audit_table
from policies.emergency import define_emergency_table
from schema.store.tables import RecordTables, define_tables

__all__ = ["AUDIT_LOG", "EMERGENCIES", "TABLES", "metadata"]

metadata = sa.MetaData()
TABLES: RecordTables = define_tables(metadata)
EMERGENCIES: sa.Table = define_emergency_table(metadata)
AUDIT_LOG: sa.Table = define_audit_table(metadata)
