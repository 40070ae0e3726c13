"""The hub database's Alembic migrations."""
