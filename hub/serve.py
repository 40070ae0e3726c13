"""`linli hub ...`: run the district hub."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from hub.app import MIGRATIONS, create_app
from hub.sealed import SECRETS_KEY_VARIABLE, Sealer, new_key
from hub.secrets_at_rest import check_secrets, reencrypt_secrets
from hub.settings import HubSettings
from schema.runtime.db import Database, upgrade
from schema.runtime.logs import configure_logging
from schema.runtime.service import run
from schema.runtime.settings import load_settings

__all__ = ["app"]

T = TypeVar("T")

app = typer.Typer(help="Run the district hub.", no_args_is_help=True)


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML settings file; LINLI_* env variables override it"
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [LINLI_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [LINLI_PORT]")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy async URL [LINLI_DATABASE_URL]")
    ] = None,
    migrate: Annotated[bool, typer.Option(help="Run the database migrations first")] = True,
) -> None:
    """Serve the hub: federated GraphQL at /graphql, OAuth 2.0 at /oauth, health, metrics."""
    settings = load_settings(HubSettings, config, host=host, port=port, database_url=database_url)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    if migrate:
        asyncio.run(upgrade(MIGRATIONS, settings.database_url))
    # Before serving: a key that cannot open the stored secrets is one line, not a traceback.
    asyncio.run(_with_database(settings, lambda db: _readable_secrets(db, settings.sealer())))
    run(create_app(settings), settings)


async def _readable_secrets(db: Database, sealer: Sealer) -> None:
    # No verdict on the key without a readable database: the hub starts, readiness says why.
    with contextlib.suppress(OSError, SQLAlchemyError):
        await check_secrets(db, sealer)


async def _with_database(settings: HubSettings, work: Callable[[Database], Awaitable[T]]) -> T:
    db = Database(settings.database_url)
    try:
        return await work(db)
    finally:
        await db.dispose()


secrets_app = typer.Typer(
    help="The key that encrypts the hub's signing keys and webhook secrets at rest"
    f" ({SECRETS_KEY_VARIABLE}).",
    no_args_is_help=True,
)
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new random key for LINLI_SECRETS_KEY."""
    typer.echo(new_key())


@secrets_app.command("reencrypt")
def secrets_reencrypt(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML settings file; LINLI_* env variables override it"
        ),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy async URL [LINLI_DATABASE_URL]")
    ] = None,
) -> None:
    """Encrypt every stored secret with the first key of LINLI_SECRETS_KEY.

    Seals plain-text rows, and rows sealed with an older key of the list. To rotate:
    put a new key in front (``NEW,OLD``) on every replica, run this, then drop OLD.
    """
    settings = load_settings(HubSettings, config, database_url=database_url)
    census = asyncio.run(
        _with_database(settings, lambda db: reencrypt_secrets(db, settings.sealer()))
    )
    typer.echo(f"re-encrypted the hub's secrets: {census}")
