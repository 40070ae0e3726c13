"""`linli clients ...`, `linli keys ...`, `linli users ...` and `linli token`: manage the hub's
OAuth clients, keys and people.

They work directly on the hub database (``--database-url``), no server needed.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from hub.auth import people, service
from hub.auth.errors import ClientCredentialsInvalid, ScopeNotGranted
from hub.auth.keys import KeyRing
from hub.auth.roles import ROLE_SCOPES, Role
from hub.auth.scopes import SCOPES, parse_scopes
from hub.auth.tokens import TokenIssuer
from hub.settings import HubSettings
from schema.enums import OrgKind
from schema.errors import LinliError
from schema.runtime.db import Database, open_existing
from schema.runtime.settings import ConfigError, load_settings

__all__ = ["clients_app", "keys_app", "token", "users_app"]

clients_app = typer.Typer(help="The hub's OAuth 2.0 clients.", no_args_is_help=True)
keys_app = typer.Typer(help="The hub's token signing keys.", no_args_is_help=True)
users_app = typer.Typer(
    help="People who sign in at the hub (the web app): accounts, roles, passwords.",
    no_args_is_help=True,
)
err = Console(stderr=True)

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file; LINLI_* env variables override it"),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(envvar="LINLI_DATABASE_URL", help="SQLAlchemy async URL of the hub database"),
]


def _settings(config: Path | None, database_url: str | None) -> HubSettings:
    try:
        return load_settings(HubSettings, config, database_url=database_url)
    except (FileNotFoundError, ValueError) as error:
        err.print(f"[red]bad settings:[/] {error}")
        raise typer.Exit(2) from error


def _run(settings: HubSettings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` against the hub database; errors become a message and exit code 1."""

    async def main() -> T:
        db = await open_existing(settings.database_url, part="hub", table="oauth_clients")
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except LinliError as error:
        err.print(f"[red]error:[/] {error.message}")
        raise typer.Exit(1) from error
    except ConfigError as error:
        err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from error
    except (OSError, SQLAlchemyError) as error:
        err.print(f"[red]hub database error:[/] {error}")
        err.print("is the URL right, and the database migrated (`linli db upgrade hub`)?")
        raise typer.Exit(1) from error


def _print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Tab-separated lines, never wrapped, so scripts can read them."""
    for row in [header, *rows]:
        typer.echo("\t".join(row))


@clients_app.command("add")
def clients_add(
    org: Annotated[str, typer.Option(help="Division code of the client's organisation")],
    org_kind: Annotated[OrgKind, typer.Option(help="What kind of organisation it is")],
    scopes: Annotated[
        str, typer.Option(help=f"Space-separated scopes it may get, from: {' '.join(SCOPES)}")
    ],
    district: Annotated[
        str | None, typer.Option(help="County-level GB/T 2260 code of its district")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="The client id (default: derived from --org)")
    ] = None,
    node_credentials: Annotated[
        Path | None,
        typer.Option(
            help="Write the id and secret to this new file (TOML, owner-only) instead of"
            " printing the secret: a node's --config for delivering its flags to the hub",
        ),
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Register a client; prints its id and its secret, which is shown this once."""
    settings = _settings(config, database_url)
    # Claimed before the client exists, so neither is made when the other cannot be.
    credentials = _claim_credentials_file(node_credentials) if node_credentials else None

    async def add(db: Database) -> tuple[str, str]:
        async with db.transaction() as session:
            client, secret = await service.create_client(
                session,
                org=org,
                org_kind=org_kind,
                district=district,
                scopes=scopes,
                client_id=client_id,
            )
            return client.client_id, secret

    try:
        new_id, secret = _run(settings, add)
    except BaseException:
        if node_credentials is not None and credentials is not None:
            os.close(credentials)
            node_credentials.unlink()
        raise
    if node_credentials is not None and credentials is not None:
        with os.fdopen(credentials, "w", encoding="utf-8") as file:
            file.write(
                "# A node's OAuth client at the hub (`linli clients add --node-credentials`).\n"
                f"hub_client_id = {json.dumps(new_id)}\n"
                f"hub_client_secret = {json.dumps(secret)}\n"
            )
        typer.echo(f"client_id:     {new_id}")
        typer.echo(f"credentials:   {node_credentials}")
        return
    typer.echo(f"client_id:     {new_id}")
    typer.echo(f"client_secret: {secret}")
    err.print("[yellow]store the secret now: it is not shown again[/]")


def _claim_credentials_file(path: Path) -> int:
    """Create ``path`` empty and owner-only; an existing file is never overwritten (exit 1)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        err.print(f"[red]error:[/] {path} exists; it may hold a client's only copy of its secret")
        raise typer.Exit(1) from None
    except OSError as error:
        err.print(f"[red]error:[/] cannot create {path}: {error.strerror}")
        raise typer.Exit(1) from None


@clients_app.command("list")
def clients_list(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """List the clients (never their secrets)."""
    settings = _settings(config, database_url)

    async def rows(db: Database) -> list[tuple[str, ...]]:
        async with db.sessions() as session:
            return [
                (
                    c.client_id,
                    c.org,
                    c.org_kind.value,
                    c.district or "",
                    c.scope,
                    "disabled" if c.disabled else "active",
                )
                for c in await service.list_clients(session)
            ]

    _print_rows(("client_id", "org", "kind", "district", "scopes", "status"), _run(settings, rows))


@clients_app.command("disable")
def clients_disable(
    client_id: Annotated[str, typer.Argument(help="The client to disable")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Disable a client: no new tokens, and its live tokens are refused by the hub."""
    settings = _settings(config, database_url)

    async def disable(db: Database) -> None:
        async with db.transaction() as session:
            await service.disable_client(session, client_id)

    _run(settings, disable)
    typer.echo(f"client {client_id} disabled")


@keys_app.command("rotate")
def keys_rotate(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Sign with a new key from now on; the old one stays published until its tokens expire."""
    settings = _settings(config, database_url)
    kid = _run(settings, lambda db: KeyRing(db, settings).rotate())
    typer.echo(f"signing with new key {kid}")
    err.print(f"running hubs switch within {settings.key_refresh_s:g} s")


@keys_app.command("list")
def keys_list(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """List the published signing keys (public information only)."""
    settings = _settings(config, database_url)

    async def rows(db: Database) -> list[tuple[str, ...]]:
        keys = KeyRing(db, settings)
        await keys.load()
        signing = keys.signing_key.kid
        return [
            (k["kid"], k["alg"], "signing" if k["kid"] == signing else "retired")
            for k in keys.jwks()["keys"]
        ]

    _print_rows(("kid", "alg", "status"), _run(settings, rows))


def token(
    client_id: Annotated[str, typer.Option(help="The client's id")],
    client_secret: Annotated[
        str, typer.Option(envvar="LINLI_CLIENT_SECRET", help="The client's secret")
    ],
    audience: Annotated[
        str | None, typer.Option(help="Who the token is for (default: the hub itself)")
    ] = None,
    scope: Annotated[
        str | None, typer.Option(help="Space-separated scopes (default: all the client's)")
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Print an access token for a client, straight from the hub database."""
    settings = _settings(config, database_url)

    async def issue(db: Database) -> str:
        async with db.sessions() as session:
            client = await service.get_client(session, client_id)
        if client is None:
            service.waste_secret_check(client_secret)
            raise ClientCredentialsInvalid("unknown client or wrong secret")
        if not service.verify_secret(client_secret, client.secret_hash):
            raise ClientCredentialsInvalid("unknown client or wrong secret")
        if client.disabled:
            raise ClientCredentialsInvalid(f"client {client_id} is disabled")
        requested = parse_scopes(scope) if scope else client.scopes
        if not requested <= client.scopes:
            outside = " ".join(sorted(requested - client.scopes))
            raise ScopeNotGranted(f"scope not granted to this client: {outside}")
        keys = KeyRing(db, settings)
        await keys.load()
        return (
            TokenIssuer(settings, keys)
            .issue(
                client_id=client.client_id,
                org=client.org,
                org_kind=client.org_kind,
                district=client.district,
                scopes=requested,
                audience=audience,
            )
            .access_token
        )

    typer.echo(_run(settings, issue))


_ROLES_HELP = "; ".join(f"{role.value}: {' '.join(sorted(ROLE_SCOPES[role]))}" for role in Role)
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        help="Read the password from the first line of this file (default: ask for it)",
        exists=True,
        dir_okay=False,
    ),
]


def _password(password_file: Path | None) -> str:
    """The new password, from the file or asked twice without echo."""
    if password_file is not None:
        lines = password_file.read_text("utf-8").splitlines()
        return lines[0] if lines else ""
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


def _ended(count: int, settings: HubSettings) -> None:
    if count:
        err.print(
            f"{count} live access token(s) revoked; running hubs refuse them within"
            f" {settings.revocation_refresh_s:g} s, sources within seconds"
        )


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Option(help="Sign-in name: 3-64 of a-z 0-9 . _ -")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 王芳")],
    org: Annotated[str, typer.Option(help="Division code of the person's organisation")],
    org_kind: Annotated[OrgKind, typer.Option(help="What kind of organisation it is")],
    roles: Annotated[str, typer.Option(help=f"Space-separated roles, from: {_ROLES_HELP}")],
    district: Annotated[
        str | None, typer.Option(help="County-level GB/T 2260 code of the organisation's district")
    ] = None,
    password_file: PasswordFileOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add a person to an organisation with roles; they sign in at the web app."""
    settings = _settings(config, database_url)
    password = _password(password_file)

    async def add(db: Database) -> str:
        async with db.transaction() as session:
            person = await people.create_person(
                session,
                username=username,
                display_name=name,
                org=org,
                org_kind=org_kind,
                district=district,
                roles=roles,
                password=password,
            )
            return person.roles

    granted = _run(settings, add)
    typer.echo(f"person {username} added with roles {granted}")


@users_app.command("list")
def users_list(
    after: Annotated[
        str | None, typer.Option(help="Start after this username (pages of --limit)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="People per page")] = 100,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """List people (never their passwords), a page at a time; the next page's --after is shown."""
    settings = _settings(config, database_url)

    async def rows(db: Database) -> list[tuple[str, ...]]:
        async with db.sessions() as session:
            return [
                (
                    p.username,
                    p.display_name,
                    p.org,
                    p.org_kind.value,
                    p.district or "",
                    p.roles,
                    "disabled" if p.disabled else "active",
                )
                for p in await people.list_people(session, after=after, limit=limit)
            ]

    found = _run(settings, rows)
    _print_rows(("username", "name", "org", "kind", "district", "roles", "status"), found)
    if len(found) == limit:
        err.print(f"more may follow: --after {found[-1][0]}")


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument(help="The person to disable")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Disable a person: no sign-in or refresh; their sessions end and their tokens are revoked."""
    settings = _settings(config, database_url)

    async def disable(db: Database) -> int:
        async with db.transaction() as session:
            return len(await people.disable_person(session, username))

    count = _run(settings, disable)
    typer.echo(f"person {username} disabled")
    _ended(count, settings)


@users_app.command("reset-password")
def users_reset_password(
    username: Annotated[str, typer.Argument(help="The person whose password to set")],
    password_file: PasswordFileOption = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Set a new password; the person's sessions end (signed out everywhere)."""
    settings = _settings(config, database_url)
    password = _password(password_file)

    async def reset(db: Database) -> int:
        async with db.transaction() as session:
            return len(await people.reset_password(session, username, password))

    count = _run(settings, reset)
    typer.echo(f"password of {username} set")
    _ended(count, settings)
