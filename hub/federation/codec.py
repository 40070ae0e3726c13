"""GraphQL JSON to and from the schema's strawberry objects, for values crossing to sources."""

from __future__ import annotations

import enum
import functools
from datetime import datetime
from typing import Any

from strawberry.types.base import StrawberryList, StrawberryOptional
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.utils.str_converters import to_camel_case

__all__ = ["DecodeError", "decode", "encode_input"]


class DecodeError(ValueError):
    """A source's answer does not fit the common schema."""


def _graphql_name(field: Any) -> str:
    return str(field.graphql_name or to_camel_case(field.python_name))


@functools.cache
def _fields(tp: Any) -> tuple[tuple[str, str, Any], ...]:
    """(python name, GraphQL name, type) of a type's data fields, computed once per type."""
    definition = tp.__strawberry_definition__
    return tuple(
        (field.python_name, _graphql_name(field), field.type)
        for field in definition.fields
        if field.base_resolver is None  # computed fields are resolved by the hub
    )


def decode(tp: Any, value: Any) -> Any:
    """Build the strawberry value of type ``tp`` from a source's JSON."""
    if isinstance(tp, StrawberryOptional):
        return None if value is None else decode(tp.of_type, value)
    if value is None:
        raise DecodeError("null for a non-null field")
    if isinstance(tp, StrawberryList):
        if not isinstance(value, list):
            raise DecodeError("expected a list")
        return [decode(tp.of_type, item) for item in value]
    if isinstance(tp, StrawberryEnumDefinition):
        return _enum_member(tp.wrapped_cls, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_member(tp, value)
    definition = getattr(tp, "__strawberry_definition__", None)
    if definition is not None:
        if not isinstance(value, dict):
            raise DecodeError(f"expected an object for {definition.name}")
        return tp(
            **{
                python: decode(field_type, value[name]) if name in value else None
                for python, name, field_type in _fields(tp)
            }
        )
    if tp is datetime:
        if not isinstance(value, str):
            raise DecodeError("expected a date-time string")
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise DecodeError(f"bad date-time {value[:40]!r}") from exc
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, bool, str) and not isinstance(value, tp):
        raise DecodeError(f"expected {tp.__name__}")
    return value


def _enum_member(cls: Any, value: Any) -> enum.Enum:
    try:
        member: enum.Enum = cls[value]
    except (KeyError, TypeError) as exc:
        raise DecodeError(f"{value!r} is not a {cls.__name__}") from exc
    return member


def encode_input(value: Any) -> Any:
    """GraphQL variables JSON of a strawberry input value."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [encode_input(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    definition = getattr(value, "__strawberry_definition__", None)
    if definition is not None:
        out: dict[str, Any] = {}
        for field in definition.fields:
            item = getattr(value, field.python_name, None)
            if item is not None:
                out[_graphql_name(field)] = encode_input(item)
        return out
    return value
