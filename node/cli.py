"""`linli node ...`: run a community node."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from node.app import MIGRATIONS, create_app
from node.settings import NodeSettings
from policies.errors import PolicyError
from schema.runtime.db import upgrade
from schema.runtime.logs import configure_logging
from schema.runtime.service import run
from schema.runtime.settings import load_settings

__all__ = ["MIGRATIONS", "app"]

app = typer.Typer(help="Run a community data node.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file; LINLI_* env variables override it"),
]


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [LINLI_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [LINLI_PORT]")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy async URL [LINLI_DATABASE_URL]")
    ] = None,
    migrate: Annotated[
        bool, typer.Option(help="Run the database migrations before serving")
    ] = True,
) -> None:
    """Serve this community's node: GraphQL at /graphql, health, metrics, well-known."""
    settings = load_settings(NodeSettings, config, host=host, port=port, database_url=database_url)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    try:
        # Policies load before anything else happens: a bad file stops the node here.
        node = create_app(settings)
    except PolicyError as error:
        typer.echo(f"refusing to start: invalid policy file {error.file}: {error.reason}", err=True)
        raise typer.Exit(1) from None
    if migrate:
        asyncio.run(upgrade(MIGRATIONS, settings.database_url))
    run(node, settings)
