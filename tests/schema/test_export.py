"""The exported schema artifacts are in sync with the models."""

from __future__ import annotations

import json

from policies.engine import SCHEMA_PATH, PolicyEngine
from policies.records import cedar_schema
from schema.export import ROOT, artifacts, stale_artifacts
from schema.records import REGISTRY


def test_committed_artifacts_match_the_models() -> None:
    cedar = {SCHEMA_PATH: cedar_schema()}
    assert stale_artifacts(cedar) == [], "run `linli schema export` and commit the result"


def test_the_cedar_schema_declares_every_record_type_with_its_facts() -> None:
    text = cedar_schema()
    for name, record_type in REGISTRY.items():
        line = next(x for x in text.splitlines() if x.startswith(f"  entity {name} = "))
        for fact in record_type.facts:
            assert f"{fact.name}: " in line
    assert f"resource: [{', '.join(REGISTRY)}]" in text
    # The engine loads it: a Cedar syntax or type error would raise here.
    PolicyEngine()


def test_artifacts_carry_field_groups_and_code_lists() -> None:
    produced = artifacts()
    resource = json.loads(produced[ROOT / "jsonschema" / "Resource.json"])
    assert resource["properties"]["quantity"]["x-field-group"] == "quantity.exact"
    assert resource["properties"]["location"]["x-field-group"] == "location.exact"
    volunteer = json.loads(produced[ROOT / "jsonschema" / "Volunteer.json"])
    assert volunteer["properties"]["phone"]["x-field-group"] == "personal"
    sdl = produced[ROOT / "sdl" / "common.graphql"]
    assert "type Resource {" in sdl
    assert "availableBand: QuantityBand" in sdl
    assert "type Query" not in sdl
