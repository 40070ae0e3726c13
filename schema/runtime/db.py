"""Database engine, sessions and Alembic migrations for one service database."""

from __future__ import annotations

import asyncio
import sqlite3
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from schema.errors import DatabaseBusy, DatabaseUnavailable, LinliError
from schema.runtime.settings import ConfigError

__all__ = [
    "Database",
    "alembic_config",
    "describe",
    "lock_table",
    "open_existing",
    "storage_failure",
    "upgrade",
]

_SETTING = "LINLI_DATABASE_URL (or --database-url, or database_url in --config)"


RETRY_AFTER_S = 2
"""What a caller is told to wait when the database is busy or gone (``retryAfter``)."""

BUSY_TIMEOUT_MS = 5000
"""How long an SQLite statement waits for another writer's lock before it gives up."""


_UNAVAILABLE_SQLSTATES = ("08", "57P", "3D000", "53300")
"""PostgreSQL: connection exceptions, operator intervention (shutdown, starting up), the
database does not exist, too many connections."""


def storage_failure(error: BaseException) -> LinliError | None:
    """The caller-facing error for a database failure (None when ``error`` is not one).

    A lock held past the busy timeout is ``DATABASE_BUSY``; a server that cannot be reached
    or a connection that broke is ``DATABASE_UNAVAILABLE``. Either way the transaction was
    rolled back, so the request may be retried as it is.
    """
    if isinstance(error, OperationalError):
        text = str(error.orig).lower()
        if "database is locked" in text or "database table is locked" in text:
            return DatabaseBusy(
                "the database is busy with another writer; nothing was written, retry shortly",
                retryAfter=RETRY_AFTER_S,
            )
    sqlstate = str(getattr(getattr(error, "orig", None), "sqlstate", None) or "")
    if (
        isinstance(error, OSError | DisconnectionError | InterfaceError | OperationalError)
        or (isinstance(error, DBAPIError) and error.connection_invalidated)
        or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    ):
        return DatabaseUnavailable(
            "the database cannot be reached; nothing was written, retry shortly",
            retryAfter=RETRY_AFTER_S,
        )
    return None


async def lock_table(session: AsyncSession, table: sa.Table) -> None:
    """Serialise the writers of ``table`` until the session's transaction ends.

    PostgreSQL: an advisory lock keyed by the table's name. SQLite: a write that changes
    nothing takes the database write lock (waiting out the busy timeout); reads before it
    hold no snapshot, so what is read next is the newest.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"linli:{table.name}".encode()) - 2**31  # a signed 32-bit key
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        return
    column = (list(table.primary_key.columns) or list(table.columns))[0]
    await session.execute(sa.update(table).where(column.is_(None)).values({column.name: column}))


def describe(url: str) -> str:
    """The URL without its password, fit for a message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unreadable URL)"


def _sqlite_path(url: str) -> Path | None:
    """The file an SQLite URL names (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _unreachable(step: str, url: str, error: BaseException) -> ConfigError:
    reason = str(getattr(error, "orig", None) or error).splitlines()[0]
    return ConfigError(
        f"{step}: cannot use the database at {describe(url)}: {reason}; is the server running"
        f" and the URL right? (setting {_SETTING})"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run while a writer commits; busy_timeout waits for the lock.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(script_location: Path, url: str) -> Config:
    """An Alembic config for a service's migration folder and database."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(script_location: Path, url: str, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` (in a thread: Alembic's env runs its own loop).

    A database that cannot be reached is a ``ConfigError`` naming the step, the URL (without
    its password) and the setting, not a traceback.
    """
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(script_location, url), revision)
    except (OSError, SQLAlchemyError) as error:
        raise _unreachable("migrating the database", url, error) from error


async def open_existing(url: str, *, part: str, table: str) -> Database:
    """The ``part``'s database for a command that works on one: it must exist and be migrated.

    Never creates anything: a missing SQLite file, an empty database or another part's
    database (one without ``table``) is a ``ConfigError`` that says which URL was used and how
    to make the database.
    """
    try:
        path = _sqlite_path(url)
    except ArgumentError as error:
        raise ConfigError(f"{_SETTING}: not a database URL: {error}") from None
    fix = f"point {_SETTING} at the {part}'s database, or create it with `linli db upgrade {part}`"
    if path is not None and not path.is_file():
        raise ConfigError(f"no {part} database at {path}: {fix}")
    db = Database(url)
    try:
        revision = await db.current_revision()
    except (OSError, SQLAlchemyError) as error:
        await db.dispose()
        raise _unreachable(f"opening the {part} database", url, error) from error
    if revision is None:
        await db.dispose()
        raise ConfigError(f"the database at {describe(url)} was never migrated: {fix}")
    if not await db.has_table(table):
        await db.dispose()
        raise ConfigError(
            f"the database at {describe(url)} is not a {part} database (it has no {table}"
            f" table): {fix}"
        )
    return db


class Database:
    """One service's database: an async engine and a session factory."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("postgresql"):
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits at the end, or rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def current_revision(self) -> str | None:
        """The Alembic revision the database is at (None when never migrated)."""

        def read(connection: Connection) -> str | None:
            return MigrationContext.configure(connection).get_current_revision()

        async with self.engine.connect() as connection:
            return await connection.run_sync(read)

    async def writable(self, timeout_s: float = 0.5) -> bool:
        """Whether a write could start now: for SQLite, whether another process holds the
        write lock (probed on a connection of its own, outside the pool); elsewhere, whether
        the server answers."""
        path = _sqlite_path(self.url)
        if path is None:
            async with self.engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
            return True

        def probe() -> bool:
            connection = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute("ROLLBACK")
                return True
            except sqlite3.OperationalError:
                return False
            finally:
                connection.close()

        return await asyncio.to_thread(probe)

    async def has_table(self, name: str) -> bool:
        """Whether the database holds a table of that name."""
        async with self.engine.connect() as connection:
            return await connection.run_sync(lambda sync: inspect(sync).has_table(name))

    async def at_head(self, script_location: Path) -> bool:
        """Whether the database is reachable and at the newest migration."""
        head = ScriptDirectory.from_config(
            alembic_config(script_location, self.url)
        ).get_current_head()
        return await self.current_revision() == head

    async def dispose(self) -> None:
        await self.engine.dispose()
