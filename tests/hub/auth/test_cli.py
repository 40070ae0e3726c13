"""`linli clients ...`, `linli keys ...` and `linli token` against a real hub database."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from hub import cli
from hub.app import MIGRATIONS
from hub.auth import OAuthClient, service
from node.settings import NodeSettings
from schema.runtime.db import Database
from schema.runtime.settings import load_settings
from tests.conftest import DatabaseUnderTest, free_port, migrate


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
async def url(database: DatabaseUnderTest) -> str:
    await migrate(MIGRATIONS, database.url)
    return database.url


def _invoke(runner: CliRunner, url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, [*args, "--database-url", url])
    return result.exit_code, result.output


def _add(runner: CliRunner, url: str, *extra: str) -> tuple[str, str]:
    code, output = _invoke(
        runner,
        url,
        "clients",
        "add",
        "--org",
        "110105001001",
        "--org-kind",
        "community",
        "--district",
        "110105",
        "--scopes",
        "resources:read shelters:read",
        *extra,
    )
    assert code == 0, output
    client_id = re.search(r"client_id:\s+(\S+)", output)
    secret = re.search(r"client_secret:\s+(\S+)", output)
    assert client_id, output
    assert secret, output
    return client_id.group(1), secret.group(1)


def _rows(url: str) -> list[OAuthClient]:
    async def read() -> list[OAuthClient]:
        db = Database(url)
        try:
            async with db.sessions() as session:
                return await service.list_clients(session)
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_add_prints_id_and_secret_once_and_stores_only_a_hash(runner: CliRunner, url: str) -> None:
    client_id, secret = _add(runner, url, "--client-id", "cli-staff")
    assert client_id == "cli-staff"
    assert len(secret) >= 40
    stored = {row.client_id: row for row in _rows(url)}["cli-staff"]
    assert secret not in stored.secret_hash
    assert stored.secret_hash.startswith("scrypt$")
    assert stored.scopes == {"resources:read", "shelters:read"}

    code, listing = _invoke(runner, url, "clients", "list")
    assert code == 0, listing
    assert "cli-staff" in listing
    assert secret not in listing
    assert "scrypt" not in listing


def test_token_prints_a_token_for_the_client(runner: CliRunner, url: str) -> None:
    client_id, secret = _add(runner, url)
    code, output = _invoke(
        runner,
        url,
        "token",
        "--client-id",
        client_id,
        "--client-secret",
        secret,
        "--audience",
        "urn:linli:node:110105001002",
        "--scope",
        "shelters:read",
    )
    assert code == 0, output
    token = output.strip()
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == "urn:linli:node:110105001002"
    assert claims["scope"] == "shelters:read"
    assert claims["client_id"] == claims["sub"] == client_id
    assert claims["org"] == "110105001001"


def test_token_refuses_a_wrong_secret_an_ungranted_scope_and_a_disabled_client(
    runner: CliRunner, url: str
) -> None:
    client_id, secret = _add(runner, url)
    base = ["token", "--client-id", client_id, "--client-secret"]
    code, output = _invoke(runner, url, *base, "wrong")
    assert code == 1
    assert "unknown client or wrong secret" in output
    code, output = _invoke(runner, url, *base, secret, "--scope", "pii:read")
    assert code == 1
    assert "scope not granted to this client: pii:read" in output

    code, output = _invoke(runner, url, "clients", "disable", client_id)
    assert code == 0, output
    assert [r.disabled for r in _rows(url) if r.client_id == client_id] == [True]
    code, output = _invoke(runner, url, *base, secret)
    assert code == 1
    assert "disabled" in output
    assert "eyJ" not in output


def test_add_refuses_unknown_scopes_and_writes_nothing(runner: CliRunner, url: str) -> None:
    before = len(_rows(url))
    code, output = _invoke(
        runner,
        url,
        "clients",
        "add",
        "--org",
        "110105001001",
        "--org-kind",
        "community",
        "--district",
        "110105",
        "--scopes",
        "resources:read everything:write",
    )
    assert code == 1
    assert "unknown scope(s): everything:write" in output
    assert len(_rows(url)) == before


def test_add_refuses_a_duplicate_id_and_a_bad_org_kind(runner: CliRunner, url: str) -> None:
    _add(runner, url, "--client-id", "only-once")
    code, output = _invoke(
        runner,
        url,
        "clients",
        "add",
        "--org",
        "110105001001",
        "--org-kind",
        "community",
        "--district",
        "110105",
        "--scopes",
        "resources:read",
        "--client-id",
        "only-once",
    )
    assert code == 1
    assert "already exists" in output
    code, output = _invoke(
        runner, url, "clients", "add", "--org", "x", "--org-kind", "army", "--scopes", "admin"
    )
    assert code == 2


def test_disable_of_unknown_client_fails(runner: CliRunner, url: str) -> None:
    code, output = _invoke(runner, url, "clients", "disable", "no-such-client")
    assert code == 1
    assert "no client 'no-such-client'" in output


def test_keys_rotate_and_list(runner: CliRunner, url: str) -> None:
    code, before = _invoke(runner, url, "keys", "list")
    assert code == 0, before
    code, output = _invoke(runner, url, "keys", "rotate")
    assert code == 0, output
    match = re.search(r"signing with new key (\S+)", output)
    assert match, output
    new_kid = match.group(1)
    code, listing = _invoke(runner, url, "keys", "list")
    assert code == 0
    assert re.search(rf"{re.escape(new_kid)}\s.*signing", listing)
    assert "retired" in listing


def test_settings_file_supplies_the_database(runner: CliRunner, url: str, tmp_path: Path) -> None:
    client_id, _ = _add(runner, url, "--client-id", "from-config-file")
    config = tmp_path / "hub.toml"
    config.write_text(f'database_url = "{url}"\n')
    result = runner.invoke(cli.app, ["clients", "list", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert client_id in result.output


def test_unmigrated_database_fails_clearly(runner: CliRunner, tmp_path: Path) -> None:
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    code, output = _invoke(runner, empty, "clients", "list")
    assert code == 1
    assert "linli db upgrade hub" in output


def test_commands_explain_themselves(runner: CliRunner) -> None:
    for command in (["clients", "--help"], ["keys", "--help"], ["token", "--help"]):
        result = runner.invoke(cli.app, command)
        assert result.exit_code == 0, (command, result.output)
    assert "--database-url" in runner.invoke(cli.app, ["token", "--help"]).output


# what the commands do when the database is not the hub's: one line, nothing created


def test_a_missing_database_file_is_named_and_never_created(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LINLI_DATABASE_URL", raising=False)
    for args in (
        ["token", "--client-id", "x", "--client-secret", "y"],
        ["clients", "list"],
        ["keys", "list"],
    ):
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 1, (args, result.output)
        assert "no hub database at linli-hub.db" in result.output
        assert "linli db upgrade hub" in result.output
        assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_another_parts_database_is_refused_by_name(runner: CliRunner, tmp_path: Path) -> None:
    node_db = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    assert (
        runner.invoke(cli.app, ["db", "upgrade", "node", "--database-url", node_db]).exit_code == 0
    )
    code, output = _invoke(runner, node_db, "token", "--client-id", "x", "--client-secret", "y")
    assert code == 1
    assert "is not a hub database (it has no oauth_clients table)" in output


def test_an_unreachable_server_is_one_line_without_the_password(
    runner: CliRunner, tmp_path: Path
) -> None:
    down = f"postgresql+asyncpg://postgres:s3cret@127.0.0.1:{free_port()}/hub"
    code, output = _invoke(runner, down, "clients", "list")
    assert code == 1
    assert "opening the hub database: cannot use the database at" in output
    assert "s3cret" not in output
    assert "LINLI_DATABASE_URL" in output


def test_add_writes_a_nodes_credentials_file_and_never_overwrites_one(
    runner: CliRunner, url: str, tmp_path: Path
) -> None:
    path = tmp_path / "node-110105001001.toml"
    args = ["clients", "add", "--org", "110105001001", "--org-kind", "community"]
    args += ["--district", "110105", "--scopes", "risk:flag", "--client-id", "node-cli-1"]
    code, output = _invoke(runner, url, *args, "--node-credentials", str(path))
    assert code == 0, output
    assert "client_secret" not in output
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # The file is a node's settings file: it names the client and its working secret.
    settings = load_settings(NodeSettings, path, hub_url="http://hub:8000")
    assert settings.hub_client_id == "node-cli-1"
    assert settings.hub_client_secret is not None
    secret = settings.hub_client_secret.get_secret_value()
    assert secret not in _rows(url)[-1].secret_hash
    code, output = _invoke(
        runner, url, "token", "--client-id", "node-cli-1", "--client-secret", secret
    )
    assert code == 0, output

    # A second run refuses the existing file, and neither writes it nor makes a client.
    before = path.read_bytes(), len(_rows(url))
    code, output = _invoke(runner, url, *args[:-1], "node-cli-2", "--node-credentials", str(path))
    assert code == 1
    assert f"{path}exists;" in "".join(output.split())  # rich wraps long lines
    assert (path.read_bytes(), len(_rows(url))) == before

    # A client that cannot be made leaves no file behind.
    other = tmp_path / "node-110105001002.toml"
    code, output = _invoke(runner, url, *args, "--node-credentials", str(other))
    assert code == 1
    assert "already exists" in output
    assert not other.exists()
