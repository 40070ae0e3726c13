"""The node's tables: every record type, emergencies, the audit log and the flag outbox."""

from __future__ import annotations

import sqlalchemy as sa

from node.flags.tables import FlagTables, define_flag_tables
from policies.audit import define_audit_table
from policies.emergency import define_emergency_table
from schema.store.tables import RecordTables, define_tables

__all__ = ["AUDIT_LOG", "EMERGENCIES", "FLAGS", "TABLES", "metadata"]

metadata = sa.MetaData()
TABLES: RecordTables = define_tables(metadata)
EMERGENCIES: sa.Table = define_emergency_table(metadata)
AUDIT_LOG: sa.Table = define_audit_table(metadata)
FLAGS: FlagTables = define_flag_tables(metadata)
