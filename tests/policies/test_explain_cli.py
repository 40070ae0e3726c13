"""`linli policy explain` as the README shows it, and with the owner node's own settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub import cli

OWNER = "110105001001"
NEIGHBOUR = "110105001002"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200"})


def explain(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, ["policy", "explain", *args])
    return result.exit_code, result.output


def test_the_readme_form_runs_and_takes_the_district_from_the_owner_code(
    runner: CliRunner,
) -> None:
    # README: linli policy explain --caller ORG --caller-kind KIND --owner ORG --type T
    code, output = explain(
        runner,
        *("--caller", "110105000000", "--caller-kind", "department"),
        *("--owner", OWNER, "--type", "Resource"),
    )
    assert code == 0, output
    # a department of the owner's district (110105, from the owner's code) sees it exactly
    assert "(department, district)" in output
    assert "shown exactly" in output


def test_neighbours_come_from_the_node_settings(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        f'org_code = "{OWNER}"\ndistrict = "110105"\nneighbours = ["{NEIGHBOUR}"]\n', "utf-8"
    )
    code, output = explain(
        runner, "--caller", NEIGHBOUR, "--type", "Resource", "--node-config", str(config)
    )
    assert code == 0, output
    assert "(community, neighbour)" in output
    assert "approximated" in output  # the demo policy: neighbours see quantities in bands
    assert "neighbours are unknown" not in output


def test_without_neighbours_it_says_so_instead_of_guessing(runner: CliRunner) -> None:
    code, output = explain(runner, "--caller", NEIGHBOUR, "--owner", OWNER, "--type", "Resource")
    assert code == 0, output
    assert "(community, public)" in output
    assert f"{OWNER}'s neighbours are unknown" in output


def test_explicit_neighbours_win_over_the_node_settings(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text(f'org_code = "{OWNER}"\nneighbours = ["{NEIGHBOUR}"]\n', "utf-8")
    code, output = explain(
        runner,
        *("--caller", NEIGHBOUR, "--type", "Resource"),
        *("--node-config", str(config), "--neighbours", ""),
    )
    assert code == 0, output
    assert "(community, public)" in output


def test_a_bad_node_config_is_one_clear_line(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('org_code = "110105001001"\nneighbors = []\n', "utf-8")  # misspelt key
    code, output = explain(
        runner, "--caller", NEIGHBOUR, "--type", "Resource", "--node-config", str(config)
    )
    assert code == 2
    assert "bad node settings" in output
    assert "neighbors" in output
    assert "Traceback" not in output


def test_without_owner_or_node_config_it_asks_for_one(runner: CliRunner) -> None:
    code, output = explain(runner, "--caller", NEIGHBOUR, "--type", "Resource")
    assert code == 2
    assert "--node-config" in output
