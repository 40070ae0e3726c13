"""The `linli` CLI: migrations from empty, settings from file and environment, --help."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from hub import cli
from node.app import MIGRATIONS
from node.settings import NodeSettings
from schema.runtime.db import Database
from schema.runtime.logs import redact
from schema.runtime.settings import ConfigError, load_settings
from tests.conftest import free_port


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def test_db_upgrade_builds_the_node_database_from_empty(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    result = runner.invoke(cli.app, ["db", "upgrade", "node", "--database-url", url])
    assert result.exit_code == 0, result.output
    db = Database(url)
    try:
        assert asyncio.run(db.at_head(MIGRATIONS))
    finally:
        asyncio.run(db.dispose())


def test_db_upgrade_of_unknown_service_fails_clearly(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["db", "upgrade", "warehouse"])
    assert result.exit_code == 2
    assert "unknown service 'warehouse'" in result.output


def test_every_command_explains_itself(runner: CliRunner) -> None:
    for command in (
        ["--help"],
        ["node", "serve", "--help"],
        ["db", "upgrade", "--help"],
        ["schema", "export", "--help"],
        ["demo", "--help"],
    ):
        result = runner.invoke(cli.app, command)
        assert result.exit_code == 0, (command, result.output)
    assert "--database-url" in runner.invoke(cli.app, ["node", "serve", "--help"]).output


def test_help_lists_every_part_without_importing_any() -> None:
    # `linli --help` in a fresh interpreter: the parts (and their web and database
    # stacks) stay unimported until one of their commands runs.
    probe = (
        "import sys; from hub import cli\n"
        "try:\n    cli.app(['--help'])\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('node.app', 'hub.app', 'adapters.service', 'sqlalchemy',"
        " 'alembic', 'strawberry', 'fastapi') if m in sys.modules]\n"
        "print('LOADED', loaded)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert "LOADED []" in done.stdout, done.stdout + done.stderr
    for part in ("node", "hub", "adapter", "clients", "keys", "audit", "policy", "demo", "token"):
        assert f"│ {part} " in done.stdout


def test_a_part_is_loaded_when_its_command_runs(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["clients", "--help"])
    assert result.exit_code == 0, result.output
    assert "disable" in result.output  # the real group's sub-commands, not a summary
    unknown = runner.invoke(cli.app, ["warehouse"])
    assert unknown.exit_code == 2
    assert "No such command 'warehouse'" in unknown.output


def test_settings_come_from_file_then_env_then_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        'org_code = "110105001009"\norg_name = "测试社区"\nport = 9100\nneighbours = ["110105001001"]\n',
        "utf-8",
    )
    settings = load_settings(NodeSettings, config)
    assert (settings.org_code, settings.org_name, settings.port) == (
        "110105001009",
        "测试社区",
        9100,
    )
    assert settings.neighbours == ["110105001001"]
    monkeypatch.setenv("LINLI_PORT", "9200")
    assert load_settings(NodeSettings, config).port == 9200
    assert load_settings(NodeSettings, config, port=9300).port == 9300
    with pytest.raises(ConfigError, match=r"missing\.toml: no such config file"):
        load_settings(NodeSettings, tmp_path / "missing.toml")


LINLI = Path(sys.executable).with_name("linli")


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        (
            'port = 99999\ncolour = "red"\n',
            {},
            "linli: invalid settings (from {file} or the environment): port (LINLI_PORT): Input"
            " should be less than or equal to 65535; colour (LINLI_COLOUR): is not a setting of"
            " this service (see `linli settings`)",
        ),
        (
            'org_code = "1101\n',
            {},
            "linli: {file}: not valid TOML: Illegal character '\\n' (at line 1, column 17)",
        ),
        (
            "",
            {"LINLI_PORT": "abc"},
            "linli: invalid settings (from {file} or the environment): port (LINLI_PORT): Input should be a valid integer, unable to parse string as an integer",
        ),
    ],
    ids=["out of range and unknown key", "malformed TOML", "bad environment variable"],
)
def test_a_bad_setting_is_one_line_naming_the_file_and_the_setting(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(toml, "utf-8")
    done = subprocess.run(
        [str(LINLI), "node", "serve", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "2000", **env},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == message.format(file=config), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("part", ["hub", "node", "adapter"])
def test_an_unreachable_database_at_start_is_one_line_naming_step_and_setting(part: str) -> None:
    port = free_port()  # nothing listens there
    command = {
        "hub": ["hub", "serve"],
        "node": ["node", "serve"],
        "adapter": ["adapter", "serve", "cap"],
    }
    done = subprocess.run(
        [str(LINLI), *command[part],
         "--database-url", f"postgresql+asyncpg://postgres:s3cret@127.0.0.1:{port}/linli"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "2000"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        f"linli: migrating the database: cannot use the database at"
        f" postgresql+asyncpg://postgres:***@127.0.0.1:{port}/linli: "
    ), done.stderr
    assert "LINLI_DATABASE_URL" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout


def test_a_graceful_stop_exits_0(tmp_path: Path) -> None:
    port = free_port()
    service = subprocess.Popen(
        [str(LINLI), "node", "serve", "--port", str(port),
         "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        service.send_signal(signal.SIGTERM)
        _, stderr = service.communicate(timeout=30)
    finally:
        service.kill()
    assert service.returncode == 0, stderr
    assert "stopped by SIGTERM" in stderr


def test_production_refuses_placeholder_tokens() -> None:
    with pytest.raises(ValueError, match="placeholder or short token"):
        NodeSettings(
            environment="production", trusted_callers=[{"token": "changeme", "org": "110105001001"}]
        )


def test_secrets_are_redacted_from_log_lines() -> None:
    line = redact(
        "calling with Authorization: Bearer eyJhbGciOi.abc.def and client_secret=s3cr3t&x=1"
    )
    assert "eyJhbGciOi" not in line
    assert "s3cr3t" not in line
    assert "[redacted]" in line
