"""Alembic environment of the hub database."""

from hub.tables import metadata
from schema.runtime.env import run_alembic

run_alembic(metadata)
