"""Alembic environment of the adapter service database."""

from adapters.store import metadata
from schema.runtime.env import run_alembic

run_alembic(metadata)
