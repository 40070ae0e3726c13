"""The node's tables: every record type, emergencies, the audit log, the flag outbox and
sensor readings."""

from __future__ import annotations

import sqlalchemy as sa

from node.aid.tables import AidTables, define_aid_tables
from node.flags.tables import FlagTables, define_flag_tables
from node.sensors.tables import SensorTables, define_sensor_tables
from policies.source import PolicyTables, define_policy_tables
from schema.store.tables import RecordTables, define_tables

__all__ = ["AID", "AUDIT_LOG", "EMERGENCIES", "FLAGS", "POLICY", "SENSORS", "TABLES", "metadata"]

metadata = sa.MetaData()
TABLES: RecordTables = define_tables(metadata)
POLICY: PolicyTables = define_policy_tables(metadata)
EMERGENCIES: sa.Table = POLICY.emergencies
AUDIT_LOG: sa.Table = POLICY.audit_log
FLAGS: FlagTables = define_flag_tables(metadata)
AID: AidTables = define_aid_tables(metadata)
SENSORS: SensorTables = define_sensor_tables(metadata)
