"""`linli adapter ...`: run an adapter service, import an inventory file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapters.registry import ADAPTERS, build_adapter, shared_http_client
from adapters.service import create_adapter_app
from adapters.settings import AdapterServiceSettings
from adapters.store import MIGRATIONS
from schema.runtime.db import Database, upgrade
from schema.runtime.logs import configure_logging
from schema.runtime.service import run
from schema.runtime.settings import load_settings

__all__ = ["MIGRATIONS", "app"]

app = typer.Typer(help="Run government-system adapters.", no_args_is_help=True)
console = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML settings file; [cap], [open311], ... hold each adapter's own"
    ),
]
DatabaseOption = Annotated[
    str | None, typer.Option(help="SQLAlchemy async URL [LINLI_DATABASE_URL]")
]


@app.command()
def serve(
    name: Annotated[str, typer.Argument(help=f"Which adapter: {', '.join(ADAPTERS)}")],
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [LINLI_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [LINLI_PORT]")] = None,
    database_url: DatabaseOption = None,
    migrate: Annotated[bool, typer.Option(help="Run the database migrations first")] = True,
) -> None:
    """Serve one adapter: the node protocol over its data, its poller in the background."""
    if name not in ADAPTERS:
        console.print(f"[red]unknown adapter {name!r}[/]; choose from {', '.join(ADAPTERS)}")
        raise typer.Exit(2)
    settings = load_settings(
        AdapterServiceSettings, config, host=host, port=port, database_url=database_url
    )
    configure_logging(settings.log_level, json_lines=settings.log_json)
    if migrate:
        asyncio.run(upgrade(MIGRATIONS, settings.database_url))
    http = shared_http_client()
    adapter = build_adapter(name, config, http)
    run(create_adapter_app(settings, adapter, http), settings)


@app.command("import-inventory")
def import_inventory(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX export of a warehouse")],
    mapping: Annotated[
        str | None,
        typer.Option(
            help='JSON column mapping, e.g. {"name": "物资名称", "quantity": "数量"}, or @file.json'
        ),
    ] = None,
    warehouse: Annotated[
        str | None, typer.Option(help="Warehouse code (default: settings)")
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    migrate: Annotated[bool, typer.Option(help="Run the database migrations first")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Import one inventory file into the adapter database and print the row report."""
    from adapters.base import load_section_settings
    from adapters.inventory.client import InventorySettings
    from adapters.inventory.service import import_file

    overrides: dict[str, object] = {}
    if mapping is not None:
        text = Path(mapping[1:]).read_text("utf-8") if mapping.startswith("@") else mapping
        overrides["columns"] = json.loads(text)
    if warehouse is not None:
        overrides["warehouse"] = warehouse
    inventory = load_section_settings(InventorySettings, config, "inventory", **overrides)
    settings = load_settings(AdapterServiceSettings, config, database_url=database_url)

    async def import_and_report() -> int:
        if migrate:
            await upgrade(MIGRATIONS, settings.database_url)
        db = Database(settings.database_url)
        try:
            report = await import_file(db, file, inventory)
        finally:
            await db.dispose()
        if as_json:
            print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            console.print(report.summary())
            for problem in report.rejected:
                console.print(f"  line {problem.line}: {problem.code} {problem.reason}")
        return 1 if report.fatal else 0

    raise typer.Exit(asyncio.run(import_and_report()))
