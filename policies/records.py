"""The record types as the policy engine sees them, all derived from ``schema.records.REGISTRY``.

Their disclosed models and field groups, the per-record facts policies may
look at, the bands shown instead of exact figures, and the Cedar schema the
policies are validated against (``cedar_schema``; the file in ``cedar/`` is
its committed copy, which ``linli schema export`` keeps in sync).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from sqlmodel import SQLModel

from schema.fields import FieldGroup, groups_of
from schema.records import REGISTRY, Band, Fact, FactValue

__all__ = [
    "BANDS",
    "FACT_TYPES",
    "PUBLIC_MODELS",
    "RECORD_FACTS",
    "RECORD_TYPES",
    "FactValue",
    "cedar_schema",
    "facts_of",
    "field_groups",
    "groups_in",
    "typical_facts",
]

# Keyed by the ``<type>`` part of a global id, which is also the Cedar entity type.
PUBLIC_MODELS: Final[Mapping[str, type[SQLModel]]] = MappingProxyType(
    {name: r.public for name, r in REGISTRY.items()}
)
RECORD_TYPES: Final[tuple[str, ...]] = tuple(PUBLIC_MODELS)

_FACTS: Final[Mapping[str, tuple[Fact, ...]]] = MappingProxyType(
    {name: r.facts for name, r in REGISTRY.items()}
)
RECORD_FACTS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {name: tuple(f.name for f in facts) for name, facts in _FACTS.items()}
)
"""The facts each record type's policies may look at, by name."""

FACT_TYPES: Final[Mapping[str, type[FactValue]]] = MappingProxyType(
    {f.name: f.kind for facts in _FACTS.values() for f in facts}
)
"""The Python type of each fact; the Cedar attribute types follow from them."""

BANDS: Final[Mapping[str, Band]] = MappingProxyType(
    {name: r.band for name, r in REGISTRY.items() if r.band is not None}
)
"""The approximate figure each record type shows instead of its exact quantities."""

_FIELD_GROUPS: Final[Mapping[str, Mapping[str, FieldGroup]]] = MappingProxyType(
    {name: MappingProxyType(groups_of(model)) for name, model in PUBLIC_MODELS.items()}
)
_GROUPS_IN: Final[Mapping[str, tuple[FieldGroup, ...]]] = MappingProxyType(
    {
        name: tuple(g for g in FieldGroup if g in set(groups.values()))
        for name, groups in _FIELD_GROUPS.items()
    }
)


def _known(record_type: str) -> str:
    if record_type not in PUBLIC_MODELS:
        raise ValueError(
            f"unknown record type {record_type!r}; known: {', '.join(sorted(PUBLIC_MODELS))}"
        )
    return record_type


def field_groups(record_type: str) -> Mapping[str, FieldGroup]:
    """Each tagged field of the record type's public model, mapped to its group."""
    return _FIELD_GROUPS[_known(record_type)]


def groups_in(record_type: str) -> tuple[FieldGroup, ...]:
    """The field groups the record type has, in ``FieldGroup`` order."""
    return _GROUPS_IN[_known(record_type)]


def facts_of(record_type: str, record: Mapping[str, Any]) -> dict[str, FactValue]:
    """The facts of one record (a dict of its public fields) that policies may look at."""
    return {f.name: f.of(record) for f in _FACTS[_known(record_type)]}


def typical_facts(record_type: str, owner: str, caller: str) -> dict[str, FactValue]:
    """The facts of the record the baseline shares most widely, so ``explain`` shows the ceiling."""
    return {f.name: f.typical(owner, caller) for f in _FACTS[_known(record_type)]}


_CEDAR_TYPES: Final[Mapping[type[FactValue], str]] = {
    bool: "Bool",
    str: "String",
    frozenset: "Set<Organisation>",
}

_CEDAR_HEADER = """\
// The Cedar schema of Linli's sharing policies. Generated from the record
// registry (schema.records.REGISTRY) by `linli schema export`: do not edit.
//
// A request asks: may this organisation (principal) read one field group of one
// owner's records of one type (resource), exactly or approximately (action),
// in this mode, for this purpose, holding these scopes (context)?
//
// The resource is not a single record: it is (owner, record type, field group)
// plus the few per-record facts a policy may look at (a record type's ``facts``
// in its declaration). Records that agree on those facts share one decision,
// which is what lets the engine cache decisions and evaluate a page of 1,000
// records with a handful of requests.
//
// Every policy is validated against this schema when it is loaded.

namespace Linli {
  // Per-request facts. ``relation`` is the relation the caller claims
  // ("self" | "neighbour" | "district" | "superior" | "public"); the baseline also checks it
  // against the organisations' attributes, so a wrong claim fails closed.
  type ReadContext = {
    mode: String,               // "normal" | "emergency"
    emergency_level?: Long,     // 1 (level I, most severe) .. 4 (level IV), while declared
    scopes: Set<String>,        // the OAuth scopes of the caller's token
    purpose: String,            // the purpose the caller stated, "" when none
    relation: String,
  };

  // A community, department, adapter, hub or the public, keyed by its source id
  // (a division code for communities and departments).
  entity Organisation = {
    kind: String,                    // schema.enums.OrgKind value
    district?: String,               // county-level GB/T 2260 code, when known
    neighbours?: Set<Organisation>,  // known for the data's owner only
    superiors?: Set<String>,         // the owner's city and province codes (GB/T 2260)
  };

  // One field group of one owner's records of each type. ``group`` is a
  // schema.fields.FieldGroup value ("identity", "quantity.exact", ...).
"""

_CEDAR_FOOTER = """
  // ``read`` groups both modes so that one forbid hides a group entirely.
  // The engine also treats a forbid on read_approx as hiding the exact value
  // (exact is strictly more than approximate). ``read_aggregate`` asks whether
  // the owner's records of a type count in totals (counts and sums by kind,
  // status and area) without any record being shown; it is asked for the
  // ``identity`` group, so a forbid on ``read`` takes records out of totals too.
  action read;
  action read_exact, read_approx, read_aggregate in [read] appliesTo {{
    principal: [Organisation],
    resource: [{resources}],
    context: ReadContext,
  }};
}}
"""


def _cedar_entity(name: str, facts: tuple[Fact, ...]) -> str:
    attributes = ["owner: Organisation", "group: String"]
    attributes += [f"{f.name}: {_CEDAR_TYPES[f.kind]}" for f in facts]
    notes = "; ".join(f"{f.name}: {f.doc}" for f in facts if f.doc)
    return f"  entity {name} = {{ {', '.join(attributes)} }};" + (f"  // {notes}" if notes else "")


def cedar_schema() -> str:
    """The Cedar schema for every registered record type."""
    entities = "\n".join(_cedar_entity(name, facts) for name, facts in _FACTS.items())
    footer = _CEDAR_FOOTER.format(resources=", ".join(_FACTS))
    return _CEDAR_HEADER + entities + "\n" + footer
