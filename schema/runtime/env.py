"""The body of every service's Alembic ``env.py`` (async engines, SQLite batch mode)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from schema.storage import PydanticJSON

__all__ = ["run_alembic"]


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # A JSON column is plain JSON in SQL; the pydantic type lives in the model only.
    if type_ == "type" and isinstance(obj, PydanticJSON):
        return "sa.JSON()"
    return False


def _configure(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_configure, metadata)
        await connection.commit()
    await engine.dispose()


def run_alembic(metadata: MetaData) -> None:
    """Run the migrations Alembic was asked for against the configured URL."""
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url: run migrations through `linli db upgrade`")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_online(url, metadata))
