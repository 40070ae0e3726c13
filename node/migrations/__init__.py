"""The node database's Alembic migrations."""
