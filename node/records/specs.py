"""What differs between record types: their models, table, GraphQL types and filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import SQLModel

from node import tables
from schema import records
from schema.api import filters
from schema.api import types as gql

__all__ = ["SPECS", "RecordSpec"]


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """One record type as the node stores and serves it."""

    type_name: str  # as in global ids and GraphQL: "Resource"
    field_name: str  # the GraphQL list field: "resources"
    table: type[tables.RowMixin]
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
    scope: str = ""  # the read scope (checked once tokens land)


SPECS: dict[str, RecordSpec] = {
    spec.type_name: spec
    for spec in (
        RecordSpec(
            "Incident", "incidents", tables.IncidentRow, records.IncidentCreate,
            records.IncidentUpdate, records.IncidentPublic, gql.Incident,
            gql.IncidentCreateInput, gql.IncidentUpdateInput, filters.IncidentFilter,
            ("title", "description", "address"),
            {"categories": "category", "statuses": "status"},
            scope="incidents:read",
        ),
        RecordSpec(
            "Resource", "resources", tables.ResourceRow, records.ResourceCreate,
            records.ResourceUpdate, records.ResourcePublic, gql.Resource,
            gql.ResourceCreateInput, gql.ResourceUpdateInput, filters.ResourceFilter,
            ("name", "kind", "description", "address"),
            {"kinds": "kind", "statuses": "status", "shareable": "shareable"},
            scope="resources:read",
        ),
        RecordSpec(
            "Shelter", "shelters", tables.ShelterRow, records.ShelterCreate,
            records.ShelterUpdate, records.ShelterPublic, gql.Shelter,
            gql.ShelterCreateInput, gql.ShelterUpdateInput, filters.ShelterFilter,
            ("name", "description", "address"),
            {"statuses": "status", "accessible": "accessible"},
            scope="shelters:read",
        ),
        RecordSpec(
            "Volunteer", "volunteers", tables.VolunteerRow, records.VolunteerCreate,
            records.VolunteerUpdate, records.VolunteerPublic, gql.Volunteer,
            gql.VolunteerCreateInput, gql.VolunteerUpdateInput, filters.VolunteerFilter,
            ("name", "team", "skills"),
            {"availabilities": "availability"},
            scope="volunteers:read",
        ),
        RecordSpec(
            "RiskFlag", "riskFlags", tables.RiskFlagRow, records.RiskFlagCreate,
            None, records.RiskFlagPublic, gql.RiskFlag,
            gql.RiskFlagCreateInput, None, filters.RiskFlagFilter,
            ("category", "description", "address"),
            {"categories": "category", "statuses": "status"},
            system_fields=("status", "transitions", "assigned_to"),
            scope="incidents:read",
        ),
        RecordSpec(
            "Alert", "alerts", tables.AlertRow, records.AlertCreate,
            None, records.AlertPublic, gql.Alert,
            None, None, filters.AlertFilter,
            ("identifier", "sender", "note"),
            {"statuses": "status"},
            scope="alerts:read",
        ),
    )
}  # fmt: skip
