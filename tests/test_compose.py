"""compose.yaml parses, and every service's command exists in the `linli` CLI."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from hub import cli

REPO = Path(__file__).resolve().parents[1]


def test_every_compose_command_is_a_real_cli_command() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text("utf-8"))
    runner = CliRunner()
    commands = [s["command"] for s in compose["services"].values() if "command" in s]
    assert len(commands) == 3
    for command in commands:
        assert command[0] == "linli"
        result = runner.invoke(cli.app, [*command[1:], "--help"])
        assert result.exit_code == 0, (command, result.output)
        for option in (part for part in command if part.startswith("--")):
            assert option in result.output, (option, command)


def test_every_node_database_is_created() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text("utf-8"))
    init = (REPO / "deploy" / "postgres-init.sql").read_text("utf-8")
    for service in compose["services"].values():
        url = service.get("environment", {}).get("LINLI_DATABASE_URL")
        if url:
            assert f"CREATE DATABASE {url.rsplit('/', 1)[1]};" in init
