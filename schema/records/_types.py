"""Constrained scalar types shared by the record models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, StringConstraints
from pydantic_core import PydanticCustomError

from schema.codes import RESOURCE_KINDS, RISK_CATEGORIES, VOLUNTEERS_KIND

__all__ = [
    "AidKindCode",
    "DivisionCode",
    "LongText",
    "Moment",
    "Name",
    "Phone",
    "ResourceKindCode",
    "RiskCategoryCode",
    "ShortText",
]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
LongText = Annotated[str, StringConstraints(max_length=4000)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 \-]{4,19}$")]

_DIVISION = re.compile(r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")


def _division_code(value: str) -> str:
    if not _DIVISION.match(value):
        raise PydanticCustomError(
            "invalid_division_code",
            "'{value}' is not a GB/T 2260 (6-digit) or statistical (9 or 12-digit) division code",
            {"value": value[:40]},
        )
    return value


def _resource_kind(value: str) -> str:
    if value not in RESOURCE_KINDS:
        raise PydanticCustomError(
            "unknown_resource_kind",
            "'{value}' is not in the resource-kind code list",
            {"value": value[:40]},
        )
    return value


def _aid_kind(value: str) -> str:
    return value if value == VOLUNTEERS_KIND else _resource_kind(value)


def _risk_category(value: str) -> str:
    if value not in RISK_CATEGORIES:
        raise PydanticCustomError(
            "unknown_risk_category",
            "'{value}' is not in the risk-category code list",
            {"value": value[:40]},
        )
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise PydanticCustomError(
            "invalid_datetime", "'{value}' needs a time zone", {"value": value.isoformat()}
        )
    return value


DivisionCode = Annotated[str, AfterValidator(_division_code)]
Moment = Annotated[datetime, AfterValidator(_aware)]
"""A point in time with its time zone: a naive one means nothing across sources."""
ResourceKindCode = Annotated[str, AfterValidator(_resource_kind)]
AidKindCode = Annotated[str, AfterValidator(_aid_kind)]
"""What an aid request asks for: a resource kind, or ``volunteers`` (people, by skill)."""
RiskCategoryCode = Annotated[str, AfterValidator(_risk_category)]
