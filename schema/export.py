"""Language-neutral artifacts of the common schema: GraphQL SDL and JSON Schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import strawberry
from sqlmodel import SQLModel

from schema.api import filters, types
from schema.api.pagination import Connection, RecordOrder
from schema.records import REGISTRY, OrganisationPublic

__all__ = ["ROOT", "artifacts", "stale_artifacts", "write_artifacts"]

ROOT = Path(__file__).parent

_JSON_SCHEMA_MODELS: dict[str, type[SQLModel]] = {
    "Organisation": OrganisationPublic,
    **{name: r.public for name, r in REGISTRY.items()},
    **{f"{name}Create": r.create for name, r in REGISTRY.items()},
}


def _sdl() -> str:
    # A carrier Query type makes every type reachable; it is not an API and is cut out.
    annotations: dict[str, object] = {"organisation": types.Organisation | None}
    for name, record_type in REGISTRY.items():
        annotations[record_type.field_name] = Connection[types.RECORD_TYPES[name]]  # type: ignore[valid-type]
    annotations["order"] = RecordOrder
    query = strawberry.type(type("Query", (), {"__annotations__": annotations}))
    schema = strawberry.Schema(
        query=query,
        types=[
            *types.CREATE_INPUTS.values(),
            *types.UPDATE_INPUTS.values(),
            *filters.FILTERS.values(),
        ],
    )
    sdl = schema.as_str()
    start = sdl.index("type Query {")
    end = sdl.index("}\n", start) + 2
    return sdl[:start] + sdl[end:].lstrip("\n")


def artifacts(extra: Mapping[Path, str] | None = None) -> dict[Path, str]:
    """Every exported file and its content, with ``extra`` ones of other parts (Cedar)."""
    out = {**(extra or {}), ROOT / "sdl" / "common.graphql": _sdl().rstrip() + "\n"}
    for name, model in _JSON_SCHEMA_MODELS.items():
        document = model.model_json_schema()
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        document["$id"] = f"https://linli.invalid/schema/{name}.json"
        out[ROOT / "jsonschema" / f"{name}.json"] = (
            json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        )
    return out


def stale_artifacts(extra: Mapping[Path, str] | None = None) -> list[Path]:
    """Exported files that are missing, differ, or are no longer produced."""
    expected = artifacts(extra)
    stale = [
        path
        for path, text in expected.items()
        if not path.is_file() or path.read_text("utf-8") != text
    ]
    for folder, pattern in ((ROOT / "sdl", "*.graphql"), (ROOT / "jsonschema", "*.json")):
        stale += [p for p in folder.glob(pattern) if p not in expected]
    return sorted(stale)


def write_artifacts(extra: Mapping[Path, str] | None = None) -> list[Path]:
    """Write every artifact; return the paths written."""
    written = []
    for path, text in artifacts(extra).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")
            written.append(path)
    return written
