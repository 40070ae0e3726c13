"""The exported schema artifacts are in sync with the models."""

from __future__ import annotations

import json
import re

from hub.app import HUB_SDL, hub_sdl
from policies.engine import SCHEMA_PATH, PolicyEngine
from policies.records import cedar_schema
from schema.export import ROOT, artifacts, stale_artifacts
from schema.records import REGISTRY


def test_committed_artifacts_match_the_models() -> None:
    parts = {SCHEMA_PATH: cedar_schema(), HUB_SDL: hub_sdl()}
    assert stale_artifacts(parts) == [], "run `linli schema export` and commit the result"


def _blocks(sdl: str) -> dict[str, str]:
    """Each definition of an SDL document, by its kind and name (``type Resource``)."""
    found = re.finditer(r"^(\w+ \w+)[^\n{]*\{\n(.*?)^\}", sdl, re.MULTILINE | re.DOTALL)
    return {m[1]: m[0] for m in found}


def test_the_hub_sdl_is_its_whole_api_around_the_common_types() -> None:
    hub = hub_sdl()
    assert HUB_SDL.read_text("utf-8") == hub
    for field in ("flags(", "flag(", "sources:", "webhooks:", "resources(", "alerts("):
        assert f"\n  {field}" in hub.split("type Query {")[1].split("}")[0], field
    for field in ("transitionFlag(", "declareEmergency(", "registerWebhook(", "addSource("):
        assert f"\n  {field}" in hub.split("type Mutation {")[1].split("}")[0], field
    assert "flagEvents(after: Int = null): FlagEvent!" in hub
    # The record types of the hub's API are the common schema's, definition for definition.
    hub_blocks = _blocks(hub)
    common = _blocks(artifacts()[ROOT / "sdl" / "common.graphql"])
    shared = [head for head in common if head in hub_blocks]
    assert {"type Resource", "type Alert", "input AlertFilter", "enum RecordOrder"} <= set(shared)
    for head in shared:
        assert hub_blocks[head] == common[head], head


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
