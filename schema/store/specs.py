"""What differs between record types: their models, GraphQL types and filters."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlmodel import SQLModel

from schema import records
from schema.api import filters
from schema.api import types as gql
from schema.scopes import Scope
from schema.store.tables import RecordTables, RowMixin

__all__ = ["SPECS", "RecordSpec", "bind_specs"]


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """One record type as the node stores and serves it."""

    type_name: str  # as in global ids and GraphQL: "Resource"
    field_name: str  # the GraphQL list field: "resources"
    create: type[SQLModel]
    update: type[SQLModel] | None
    public: type[SQLModel]
    gql_type: Any
    create_input: Any
    update_input: Any | None
    filter_input: Any
    search_fields: tuple[str, ...]
    # filter input attribute -> column it restricts (``IN`` for lists, ``=`` for scalars)
    column_filters: dict[str, str] = field(default_factory=dict)
    # columns the node sets itself on create (workflow state), with their initial values
    system_fields: tuple[str, ...] = ()
    # scopes besides records:write that let own staff create (not change) this type
    create_scopes: tuple[str, ...] = ()
    scope: str = ""  # the read scope
    table: Any = None  # the service's table, once bound (``bind``)

    def bind(self, table: type[RowMixin]) -> RecordSpec:
        """This spec over one service's table."""
        return replace(self, table=table)


SPECS: dict[str, RecordSpec] = {
    spec.type_name: spec
    for spec in (
        RecordSpec(
            "Incident", "incidents", records.IncidentCreate,
            records.IncidentUpdate, records.IncidentPublic, gql.Incident,
            gql.IncidentCreateInput, gql.IncidentUpdateInput, filters.IncidentFilter,
            ("title", "description", "address"),
            {"categories": "category", "statuses": "status"},
            scope=Scope.INCIDENTS_READ,
        ),
        RecordSpec(
            "Resource", "resources", records.ResourceCreate,
            records.ResourceUpdate, records.ResourcePublic, gql.Resource,
            gql.ResourceCreateInput, gql.ResourceUpdateInput, filters.ResourceFilter,
            ("name", "kind", "description", "address"),
            {"kinds": "kind", "statuses": "status", "shareable": "shareable"},
            scope=Scope.RESOURCES_READ,
        ),
        RecordSpec(
            "Shelter", "shelters", records.ShelterCreate,
            records.ShelterUpdate, records.ShelterPublic, gql.Shelter,
            gql.ShelterCreateInput, gql.ShelterUpdateInput, filters.ShelterFilter,
            ("name", "description", "address"),
            {"statuses": "status", "accessible": "accessible"},
            scope=Scope.SHELTERS_READ,
        ),
        RecordSpec(
            "Volunteer", "volunteers", records.VolunteerCreate,
            records.VolunteerUpdate, records.VolunteerPublic, gql.Volunteer,
            gql.VolunteerCreateInput, gql.VolunteerUpdateInput, filters.VolunteerFilter,
            ("name", "team", "skills"),
            {"availabilities": "availability"},
            scope=Scope.VOLUNTEERS_READ,
        ),
        RecordSpec(
            "RiskFlag", "riskFlags", records.RiskFlagCreate,
            None, records.RiskFlagPublic, gql.RiskFlag,
            gql.RiskFlagCreateInput, None, filters.RiskFlagFilter,
            ("category", "description", "address"),
            {"categories": "category", "statuses": "status"},
            system_fields=("status", "transitions", "assigned_to", "timeline"),
            create_scopes=(Scope.RISK_FLAG,),
            scope=Scope.INCIDENTS_READ,
        ),
        RecordSpec(
            "Alert", "alerts", records.AlertCreate,
            None, records.AlertPublic, gql.Alert,
            None, None, filters.AlertFilter,
            ("identifier", "sender", "note"),
            {"statuses": "status"},
            scope=Scope.ALERTS_READ,
        ),
    )
}  # fmt: skip


def bind_specs(tables: RecordTables) -> dict[str, RecordSpec]:
    """The specs of the record types ``tables`` holds, bound to them."""
    return {
        name: SPECS[name].bind(table) for name, table in tables.by_type.items() if name in SPECS
    }
