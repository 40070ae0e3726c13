"""Alembic environment of the node database."""

from node.tables import metadata
from schema.runtime.env import run_alembic

run_alembic(metadata)
