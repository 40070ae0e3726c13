"""Language-neutral artifacts of the common schema: GraphQL SDL and JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import strawberry

from schema import records
from schema.api import filters, types
from schema.api.pagination import Connection, RecordOrder

__all__ = ["ROOT", "artifacts", "stale_artifacts", "write_artifacts"]

ROOT = Path(__file__).parent

_RECORDS = ("Incident", "Resource", "Shelter", "Volunteer", "RiskFlag", "AidRequest", "Alert")
_JSON_SCHEMA_MODELS = {
    "Organisation": records.OrganisationPublic,
    **{name: getattr(records, f"{name}Public") for name in _RECORDS},
    **{f"{name}Create": getattr(records, f"{name}Create") for name in _RECORDS},
}


def _sdl() -> str:
    @strawberry.type
    class Query:
        organisation: types.Organisation | None
        incidents: Connection[types.Incident]
        resources: Connection[types.Resource]
        shelters: Connection[types.Shelter]
        volunteers: Connection[types.Volunteer]
        risk_flags: Connection[types.RiskFlag]
        aid_requests: Connection[types.AidRequest]
        alerts: Connection[types.Alert]
        order: RecordOrder

    schema = strawberry.Schema(
        query=Query,
        types=[
            types.IncidentCreateInput,
            types.IncidentUpdateInput,
            types.ResourceCreateInput,
            types.ResourceUpdateInput,
            types.ShelterCreateInput,
            types.ShelterUpdateInput,
            types.VolunteerCreateInput,
            types.VolunteerUpdateInput,
            types.RiskFlagCreateInput,
            types.AidRequestCreateInput,
            filters.IncidentFilter,
            filters.ResourceFilter,
            filters.ShelterFilter,
            filters.VolunteerFilter,
            filters.RiskFlagFilter,
            filters.AlertFilter,
        ],
    )
    sdl = schema.as_str()
    # The carrier Query type only makes every type reachable; it is not an API.
    start = sdl.index("type Query {")
    end = sdl.index("}\n", start) + 2
    return sdl[:start] + sdl[end:].lstrip("\n")


def artifacts() -> dict[Path, str]:
    """Every exported file and its content."""
    out = {ROOT / "sdl" / "common.graphql": _sdl().rstrip() + "\n"}
    for name, model in _JSON_SCHEMA_MODELS.items():
        document = model.model_json_schema()
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        document["$id"] = f"https://linli.invalid/schema/{name}.json"
        out[ROOT / "jsonschema" / f"{name}.json"] = (
            json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        )
    return out


def stale_artifacts() -> list[Path]:
    """Exported files that are missing, differ, or are no longer produced."""
    expected = artifacts()
    stale = [
        path
        for path, text in expected.items()
        if not path.is_file() or path.read_text("utf-8") != text
    ]
    for folder, pattern in ((ROOT / "sdl", "*.graphql"), (ROOT / "jsonschema", "*.json")):
        stale += [p for p in folder.glob(pattern) if p not in expected]
    return sorted(stale)


def write_artifacts() -> list[Path]:
    """Write every artifact; return the paths written."""
    written = []
    for path, text in artifacts().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")
            written.append(path)
    return written
