"""`linli hub ...`: run the district hub."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from hub.app import MIGRATIONS, create_app
from hub.settings import HubSettings
from schema.runtime.db import upgrade
from schema.runtime.logs import configure_logging
from schema.runtime.service import run
from schema.runtime.settings import load_settings

__all__ = ["app"]

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
    run(create_app(settings), settings)
