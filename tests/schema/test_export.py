"""The exported schema artifacts are in sync with the models."""

from __future__ import annotations

import json

from schema.export import ROOT, artifacts, stale_artifacts


def test_committed_artifacts_match_the_models() -> None:
    assert stale_artifacts() == [], "run `linli schema export` and commit the result"


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
