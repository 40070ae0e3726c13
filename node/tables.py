"""The node's tables: every record type of the common schema, in the node's own metadata."""

from __future__ import annotations

import sqlalchemy as sa

from schema.store.tables import RecordTables, define_tables

__all__ = ["TABLES", "metadata"]

metadata = sa.MetaData()
TABLES: RecordTables = define_tables(metadata)
