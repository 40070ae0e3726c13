"""`linli users add|list|disable|reset-password` against a real hub database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub import cli
from hub.app import MIGRATIONS
from hub.auth import people
from hub.auth.tables import Person, PersonSession, RefreshToken, RevokedToken
from schema.runtime.db import Database
from schema.storage import utcnow
from tests.conftest import DatabaseUnderTest, migrate

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
async def url(database: DatabaseUnderTest) -> str:
    await migrate(MIGRATIONS, database.url)
    return database.url


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n", "utf-8")
    return path


def _invoke(runner: CliRunner, url: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli.app, [*args, "--database-url", url], input=stdin)
    return result.exit_code, result.output


def _add(
    runner: CliRunner, url: str, username: str, *extra: str, stdin: str | None = None
) -> tuple[int, str]:
    return _invoke(
        runner, url, "users", "add", "--username", username, "--name", "王芳",
        "--org", "110105400001", "--org-kind", "department", "--district", "110105",
        *extra, stdin=stdin,
    )  # fmt: skip


async def _person(url: str, username: str) -> Person | None:
    db = Database(url)
    try:
        async with db.sessions() as session:
            return await session.get(Person, username)
    finally:
        await db.dispose()


async def _count(url: str, table: type[Person]) -> int:
    db = Database(url)
    try:
        async with db.sessions() as session:
            return int(await session.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
    finally:
        await db.dispose()


async def test_add_stores_an_argon2id_hash_and_list_shows_no_password(
    runner: CliRunner, url: str, password_file: Path
) -> None:
    code, output = await asyncio.to_thread(
        _add, runner, url, "wang.fang", "--roles", "duty-officer verifier",
        "--password-file", str(password_file),
    )  # fmt: skip
    assert code == 0, output
    assert "person wang.fang added with roles duty-officer verifier" in output
    stored = await _person(url, "wang.fang")
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    assert people.verify_password(PASSWORD, stored.password_hash)
    code, output = await asyncio.to_thread(_invoke, runner, url, "users", "list")
    assert code == 0
    lines = output.splitlines()
    assert lines[0].split("\t") == [
        "username", "name", "org", "kind", "district", "roles", "status",
    ]  # fmt: skip
    assert (
        "wang.fang\t王芳\t110105400001\tdepartment\t110105\tduty-officer verifier\tactive" in lines
    )
    assert "argon2" not in output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--roles", "community-staff"), "role community-staff is for a community organisation"),
        (("--roles", "superuser"), "unknown role(s): superuser"),
    ],
)
async def test_add_refuses_bad_roles_and_writes_nothing(
    runner: CliRunner, url: str, password_file: Path, extra: tuple[str, ...], message: str
) -> None:
    before = await _count(url, Person)
    code, output = await asyncio.to_thread(
        _add, runner, url, "li.wei", *extra, "--password-file", str(password_file)
    )
    assert code == 1
    assert message in output
    assert await _count(url, Person) == before


async def test_add_refuses_a_short_password_asked_twice(runner: CliRunner, url: str) -> None:
    code, output = await asyncio.to_thread(
        lambda: _add(runner, url, "zhou.qi", "--roles", "viewer", stdin="short\nshort\n")
    )
    assert code == 1
    assert "at least 8 characters" in output
    assert await _person(url, "zhou.qi") is None


async def test_disable_and_reset_password_end_sessions(
    runner: CliRunner, url: str, password_file: Path
) -> None:
    code, output = await asyncio.to_thread(
        _add, runner, url, "sun.li", "--roles", "viewer", "--password-file", str(password_file)
    )
    assert code == 0, output
    db = Database(url)
    try:
        async with db.transaction() as session:  # a live session, as a sign-in leaves it
            await people.start_session(
                session, session_id="s-1", username="sun.li", client_id="linli-web", scope=""
            )
            await people.save_refresh_token(
                session, token="r-1", session_id="s-1", ttl_s=600, access_jti="jti-1",
                access_expires_at=utcnow().replace(year=utcnow().year + 1),
            )  # fmt: skip
    finally:
        await db.dispose()
    code, output = await asyncio.to_thread(
        lambda: _invoke(
            runner, url, "users", "reset-password", "sun.li",
            stdin="another long password\nanother long password\n",
        )
    )  # fmt: skip
    assert code == 0, output
    assert "1 live access token(s) revoked" in output
    stored = await _person(url, "sun.li")
    assert stored is not None
    assert people.verify_password("another long password", stored.password_hash)
    db = Database(url)
    try:
        async with db.sessions() as session:
            assert await session.get(RevokedToken, "jti-1") is not None
            family = await session.get(PersonSession, "s-1")
            assert family is not None
            assert family.revoked_reason == "password reset"
            assert await session.get(RefreshToken, people.token_hash("r-1")) is not None
    finally:
        await db.dispose()
    code, output = await asyncio.to_thread(_invoke, runner, url, "users", "disable", "sun.li")
    assert code == 0, output
    assert "person sun.li disabled" in output
    stored = await _person(url, "sun.li")
    assert stored is not None
    assert stored.disabled
    code, output = await asyncio.to_thread(_invoke, runner, url, "users", "disable", "nobody")
    assert code == 1
    assert "no person 'nobody'" in output


def test_users_commands_explain_themselves(runner: CliRunner) -> None:
    for command in ("add", "list", "disable", "reset-password"):
        result = runner.invoke(cli.app, ["users", command, "--help"])
        assert result.exit_code == 0, result.output
    assert "duty-officer" in runner.invoke(cli.app, ["users", "add", "--help"]).output
