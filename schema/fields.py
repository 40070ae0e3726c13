"""Field groups: the unit the sharing policy works on.

Every field of every record type belongs to exactly one group. The policy
decides per (caller, relation, record type, field group) whether a group is
shown exactly, shown approximately, or hidden.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic.fields import FieldInfo
from sqlmodel import Field

__all__ = ["FieldGroup", "field_group", "grouped", "groups_of"]


class FieldGroup(enum.StrEnum):
    """The field groups a policy can allow exactly, approximately or not at all."""

    IDENTITY = "identity"  # what a record is: kind, name, category
    STATUS = "status"  # lifecycle state, times
    DESCRIPTION = "description"  # free text written by the owner
    QUANTITY_EXACT = "quantity.exact"  # exact stock and capacity figures
    LOCATION_EXACT = "location.exact"  # exact coordinates and street address
    CONTACT = "contact"  # organisational contact details
    PERSONAL = "personal"  # data about a natural person (PIPL)


# Groups whose value can be disclosed approximately (quantity bands, coarse location).
APPROXIMABLE = frozenset({FieldGroup.QUANTITY_EXACT, FieldGroup.LOCATION_EXACT})


def grouped(group: FieldGroup, default: Any = ..., **kwargs: Any) -> Any:
    """A SQLModel ``Field`` tagged with its field group."""
    extra = dict(kwargs.pop("schema_extra", {}) or {})
    extra["json_schema_extra"] = {"x-field-group": group.value}
    return Field(default, schema_extra=extra, **kwargs)


def field_group(info: FieldInfo) -> FieldGroup | None:
    """The group a model field was tagged with, if any."""
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "x-field-group" in extra:
        return FieldGroup(str(extra["x-field-group"]))
    return None


def groups_of(model: type[Any]) -> dict[str, FieldGroup]:
    """Map each tagged field of a pydantic model to its group."""
    return {
        name: group
        for name, info in model.model_fields.items()
        if (group := field_group(info)) is not None
    }
