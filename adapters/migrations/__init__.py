"""The adapter service database's Alembic migrations."""
