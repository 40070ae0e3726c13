"""The record registry: one declaration per type, checked, and enough to add a type end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from schema.records import REGISTRY, Filter, Registry
from schema.scopes import Scope

THROWAWAY = Path(__file__).with_name("throwaway")
REPO = Path(__file__).resolve().parents[2]


def test_names_fields_and_tables_are_unique() -> None:
    incident = REGISTRY["Incident"]
    with pytest.raises(ValueError, match="field_name 'incidents' is already used by Incident"):
        Registry([incident, replace(incident, name="Incident2", table_name="incidents2")])


def test_a_filter_names_a_column_or_a_condition() -> None:
    with pytest.raises(ValueError, match="needs a column, or a condition and a test"):
        Filter("statuses", list[str] | None)
    with pytest.raises(ValueError, match="needs a column, or a condition and a test"):
        Filter("statuses", list[str] | None, condition=lambda table, value: None)


def test_every_type_has_a_read_scope_and_a_unique_field() -> None:
    assert REGISTRY.field_names == (
        "incidents", "resources", "shelters", "volunteers", "riskFlags", "aidRequests", "alerts",
        "sensors",
    )  # fmt: skip
    assert all(isinstance(r.scope, Scope) for r in REGISTRY.values())
    assert REGISTRY.by_field("riskFlags").name == "RiskFlag"


def _plugin(tmp_path: Path) -> Path:
    """The throwaway package as another distribution would install it: module plus entry point."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(THROWAWAY / "linli_water_pump.py", site)
    info = site / "linli_water_pump-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: linli-water-pump\nVersion: 0.1\n", "utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[linli.records]\nwater_pump = linli_water_pump:RECORD\n", "utf-8"
    )
    return site


@pytest.mark.slow
def test_a_type_declared_only_through_the_registry_is_migrated_served_federated_and_exported(
    tmp_path: Path,
) -> None:
    site = _plugin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    done = subprocess.run(
        [sys.executable, str(THROWAWAY / "journey.py"), str(work), str(THROWAWAY / "water_pump.cedar")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["registered"] is True
    # One migration: the new table and nothing else.
    assert "op.create_table('water_pumps'" in seen["migration"]
    assert seen["migration"].count("op.create_table(") == 1
    assert "op.drop_table(" in seen["migration"]  # its downgrade
    assert "op.drop_table('water_pumps')" in seen["migration"]
    # Served by the node, with its own filter, announced as a capability.
    assert "waterPumps" in seen["capabilities"]
    assert [p["name"] for p in seen["node_min_flow_10"]] == ["排水泵一号"]
    assert seen["node_min_flow_10"][0]["flowM3h"] == 50
    # Federated by the hub and filtered by the owner's policy for each caller.
    assert sorted(p["name"] for p in seen["hub_neighbour"]) == ["排水泵一号", "排水泵二号"]
    assert all(p["flowM3h"] is None and p["location"] is None for p in seen["hub_neighbour"])
    assert [s["status"] for s in seen["hub_neighbour_sources"]] == ["ok"]
    assert sorted(p["flowM3h"] for p in seen["hub_department"]) == [5, 50]
    assert all(p["location"] is None for p in seen["hub_department"])
    unscoped = seen["hub_unscoped"]
    assert unscoped["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Exported: SDL, JSON Schema with field groups, the Cedar entity.
    assert "type WaterPump {" in seen["sdl"]
    assert "input WaterPumpFilter {" in seen["sdl"]
    assert "minFlow: Int" in seen["sdl"]
    assert seen["json_schema"]["properties"]["flow_m3h"]["x-field-group"] == "quantity.exact"
    assert "entity WaterPump = { owner: Organisation, group: String };" in seen["cedar"]
