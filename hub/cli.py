"""The `linli` command line: every part's commands under one roof."""

from __future__ import annotations

import asyncio
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from schema.runtime.db import upgrade

__all__ = ["app", "main"]

app = typer.Typer(
    name="linli",
    help="Linli (邻里): share emergency data between communities and the district.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
schema_app = typer.Typer(help="The common schema's exported artifacts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(schema_app, name="schema")


def _migration_folders() -> dict[str, Path]:
    return {ep.name: Path(ep.load()) for ep in entry_points(group="linli.migrations")}


@db_app.command("upgrade")
def db_upgrade(
    service: Annotated[str, typer.Argument(help="Whose database: node or hub")] = "node",
    database_url: Annotated[
        str | None,
        typer.Option(envvar="LINLI_DATABASE_URL", help="SQLAlchemy async URL of that database"),
    ] = None,
    revision: Annotated[str, typer.Option(help="Target revision")] = "head",
) -> None:
    """Bring a service's database to the newest migration (creates it from empty)."""
    folders = _migration_folders()
    if service not in folders:
        console.print(f"[red]unknown service {service!r}[/]; choose from {', '.join(folders)}")
        raise typer.Exit(2)
    url = database_url or "sqlite+aiosqlite:///./linli.db"
    console.print(f"upgrading {service} database to {revision} …")
    asyncio.run(upgrade(folders[service], url, revision))
    console.print("[green]done[/]")


@schema_app.command("export")
def schema_export(
    check: Annotated[
        bool, typer.Option("--check", help="Only check; exit 1 if any artifact is stale")
    ] = False,
) -> None:
    """Write schema/sdl/*.graphql, schema/jsonschema/*.json and the Cedar schema from REGISTRY."""
    from policies.engine import SCHEMA_PATH
    from policies.records import cedar_schema
    from schema.export import stale_artifacts, write_artifacts

    cedar = {SCHEMA_PATH: cedar_schema()}
    if check:
        stale = stale_artifacts(cedar)
        for path in stale:
            console.print(f"[red]stale:[/] {path}")
        if stale:
            console.print("run `linli schema export` and commit the result")
            raise typer.Exit(1)
        console.print("[green]schema artifacts are up to date[/]")
        return
    written = write_artifacts(cedar)
    console.print(f"wrote {len(written)} file(s)")


def _settings_classes() -> dict[str, Any]:
    return {ep.name: ep.load() for ep in entry_points(group="linli.settings")}


@app.command("settings")
def settings_command(
    service: Annotated[str, typer.Argument(help="node, hub or adapter")],
    markdown: Annotated[bool, typer.Option(help="Print a Markdown table (for the README)")] = False,
) -> None:
    """List a service's settings: environment variable, default and meaning."""
    from rich.table import Table

    from schema.runtime.settings import settings_rows

    classes = _settings_classes()
    if service not in classes:
        console.print(f"[red]unknown service {service!r}[/]; choose from {', '.join(classes)}")
        raise typer.Exit(2)
    rows = settings_rows(classes[service])
    if markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for name, default, description in rows:
            print(f"| `{name}` | `{default}` | {description} |")
        return
    table = Table("variable", "default", "meaning", title=f"{service} settings")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _register_parts() -> None:
    for ep in entry_points(group="linli.cli"):
        app.add_typer(ep.load(), name=ep.name)


def _register_local() -> None:
    from hub.auth.cli import token
    from hub.demo.command import demo

    app.command()(demo)
    app.command()(token)


def main() -> None:
    """Entry point of the `linli` console script."""
    _register_parts()
    _register_local()
    app()


if __name__ == "__main__":
    main()
