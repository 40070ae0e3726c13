"""The record types the policy engine knows: their disclosed models, field groups and facts."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from sqlmodel import SQLModel

from schema.fields import FieldGroup, groups_of
from schema.records import (
    AidRequestPublic,
    AlertPublic,
    IncidentPublic,
    ResourcePublic,
    RiskFlagPublic,
    ShelterPublic,
    VolunteerPublic,
)

__all__ = [
    "FACT_TYPES",
    "PUBLIC_MODELS",
    "RECORD_FACTS",
    "RECORD_TYPES",
    "FactValue",
    "facts_of",
    "field_groups",
    "groups_in",
]

FactValue = bool | str | frozenset[str]
"""The value of one record fact: a flag, a code, or a set of organisation ids."""

# Keyed by the ``<type>`` part of a global id, which is also the Cedar entity type.
PUBLIC_MODELS: Final[Mapping[str, type[SQLModel]]] = MappingProxyType(
    {
        "Incident": IncidentPublic,
        "Resource": ResourcePublic,
        "Shelter": ShelterPublic,
        "Volunteer": VolunteerPublic,
        "RiskFlag": RiskFlagPublic,
        "Alert": AlertPublic,
        "AidRequest": AidRequestPublic,
    }
)
RECORD_TYPES: Final[tuple[str, ...]] = tuple(PUBLIC_MODELS)

# The per-record facts policies may look at, by record type; each is an
# attribute of the record type's entity in schema.cedarschema. Kept few and
# coarse on purpose: they are part of the decision cache key, so records that
# agree on them share one decision.
RECORD_FACTS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "Incident": (),
        "Resource": ("shareable",),
        "Shelter": ("status",),
        "Volunteer": (),
        "RiskFlag": (),
        "Alert": ("scope",),
        "AidRequest": ("parties",),
    }
)

# The Python type of each fact; the Cedar attribute types follow from them.
FACT_TYPES: Final[Mapping[str, type[FactValue]]] = MappingProxyType(
    {"shareable": bool, "status": str, "scope": str, "parties": frozenset}
)

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


def _code(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def facts_of(record_type: str, record: Mapping[str, Any]) -> dict[str, FactValue]:
    """The facts of one record (a dict of its public fields) that policies may look at."""
    match _known(record_type):
        case "Resource":
            # Only an explicit True shares: a missing flag must not widen anything.
            return {"shareable": record.get("shareable") is True}
        case "Shelter":
            return {"status": _code(record.get("status"))}
        case "Alert":
            return {"scope": _code(record.get("scope"))}
        case "AidRequest":
            parties = (record.get("requester"), record.get("provider"))
            return {"parties": frozenset(str(p) for p in parties if p)}
        case _:
            return {}
