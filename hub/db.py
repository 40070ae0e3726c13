"""The hub database's metadata: every hub table subclasses ``HubTable``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import SQLModel

__all__ = ["HubTable", "metadata"]

metadata = sa.MetaData()


class HubTable(SQLModel, registry=registry(metadata=metadata)):
    """Base of hub tables (kept apart from the node's tables)."""
