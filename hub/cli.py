"""The `linli` command line: every part's commands under one roof."""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer import _click as click  # typer vendors click; its types are these
from typer.core import TyperCommand, TyperGroup

__all__ = ["app", "main"]

# The parts' commands are loaded only when one of them runs, so `linli --help`
# imports none of them (importing a part pulls in its web and database stacks).
_PART_HELP = {
    "adapter": "Adapter services: government systems behind the node protocol.",
    "audit": "The hash-chained audit log.",
    "clients": "OAuth clients of the hub.",
    "hub": "The district hub.",
    "keys": "The hub's token-signing keys.",
    "node": "A community node.",
    "policy": "Sharing policies.",
}
_LOCAL_COMMANDS = {
    "demo": ("hub.demo.command", "demo", "Run a whole district on this machine (SQLite)."),
    "token": ("hub.auth.cli", "token", "Mint an access token for a client (development)."),
    "demo-city": (
        "hub.demo.levels",
        "demo_city",
        "Run a city hub over two district hubs over two nodes each (SQLite).",
    ),
}


@functools.cache
def _parts() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group="linli.cli")}


class _LazyLinli(TyperGroup):
    """The `linli` group: its own commands, then each part's, loaded only to run them.

    Help lists the parts from their one-line summaries; a part is imported when a
    command of it is resolved to run (or to show its own help).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_parts(), *_LOCAL_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in {*_parts(), *_LOCAL_COMMANDS}:
            return command
        summary = _LOCAL_COMMANDS[cmd_name][2] if cmd_name in _LOCAL_COMMANDS else None
        summary = summary or _PART_HELP.get(cmd_name, f"from {_parts()[cmd_name].value}")
        return TyperCommand(cmd_name, help=summary, short_help=summary)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        loaded = None if name in self.commands else _load(name)
        if loaded is None:
            return super().resolve_command(ctx, args)
        return name, loaded, args[1:]


def _load(name: str) -> click.Command | None:
    """The real command of a part or a local command, imported now."""
    # Mounted on a throwaway group exactly as `add_typer`/`command` would mount it, so a
    # part with one command stays a group (`linli node serve`, not `linli node`).
    holder = typer.Typer()
    part = _parts().get(name)
    if part is not None:
        holder.add_typer(part.load(), name=name)
    elif name in _LOCAL_COMMANDS:
        module, attribute, _ = _LOCAL_COMMANDS[name]
        holder.command(name=name)(getattr(importlib.import_module(module), attribute))
    else:
        return None
    group = typer.main.get_group(holder)
    return group.commands[name]


app = typer.Typer(
    name="linli",
    cls=_LazyLinli,
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
    import asyncio  # here, not at the top: `linli --help` needs neither

    from schema.runtime.db import upgrade

    console.print(f"upgrading {service} database to {revision} …")
    asyncio.run(upgrade(folders[service], url, revision))
    console.print("[green]done[/]")


@schema_app.command("export")
def schema_export(
    check: Annotated[
        bool, typer.Option("--check", help="Only check; exit 1 if any artifact is stale")
    ] = False,
) -> None:
    """Write schema/sdl/*.graphql (common and the hub's API), schema/jsonschema/*.json, Cedar."""
    from hub.app import HUB_SDL, hub_sdl
    from policies.engine import SCHEMA_PATH
    from policies.records import cedar_schema
    from schema.export import stale_artifacts, write_artifacts

    cedar = {SCHEMA_PATH: cedar_schema(), HUB_SDL: hub_sdl()}
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


def main() -> None:
    """Entry point of the `linli` console script."""
    try:
        app()
    except Exception as error:
        # Imported here: settings load pydantic-settings, which `linli --help` does not
        # need; a ConfigError was raised by that module, so it is loaded by now.
        from schema.runtime.settings import ConfigError

        if not isinstance(error, ConfigError):
            raise
        console.print(f"[red]linli: {error}[/]", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
