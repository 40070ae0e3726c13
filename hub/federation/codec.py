"""GraphQL JSON to and from the schema's strawberry objects, for values crossing to sources."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
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


Decoder = Callable[[Any], Any]


def decode(tp: Any, value: Any) -> Any:
    """Build the strawberry value of type ``tp`` from a source's JSON."""
    return _decoder(tp)(value)


def _decoder(tp: Any) -> Decoder:
    """The decoder of ``tp``: built once per object type, since it runs per record returned."""
    if getattr(tp, "__strawberry_definition__", None) is not None:
        return _object_decoder(tp)
    return _build(tp)


@functools.cache
def _object_decoder(tp: Any) -> Decoder:
    definition = tp.__strawberry_definition__
    expected = f"expected an object for {definition.name}"
    # Built at the first record, not here: a type may (through others) contain itself.
    fields: tuple[tuple[str, str, Decoder], ...] | None = None

    def decode_object(value: Any) -> Any:
        nonlocal fields
        if value is None:
            raise DecodeError("null for a non-null field")
        if not isinstance(value, dict):
            raise DecodeError(expected)
        if fields is None:
            fields = tuple((python, name, _decoder(kind)) for python, name, kind in _fields(tp))
        return tp(
            **{
                python: field_decoder(value[name]) if name in value else None
                for python, name, field_decoder in fields
            }
        )

    return decode_object


def _build(tp: Any) -> Decoder:
    if isinstance(tp, StrawberryOptional):
        inner = _decoder(tp.of_type)
        return lambda value: None if value is None else inner(value)
    if isinstance(tp, StrawberryList):
        item = _decoder(tp.of_type)

        def decode_list(value: Any) -> Any:
            if value is None:
                raise DecodeError("null for a non-null field")
            if not isinstance(value, list):
                raise DecodeError("expected a list")
            return [item(v) for v in value]

        return decode_list
    if isinstance(tp, StrawberryEnumDefinition) or (
        isinstance(tp, type) and issubclass(tp, enum.Enum)
    ):
        cls = tp.wrapped_cls if isinstance(tp, StrawberryEnumDefinition) else tp

        def decode_enum(value: Any) -> Any:
            if value is None:
                raise DecodeError("null for a non-null field")
            return _enum_member(cls, value)

        return decode_enum
    if tp is datetime:
        return _decode_datetime
    if tp is float:
        return _decode_float
    if tp in (int, bool, str):
        expected = f"expected {tp.__name__}"

        def decode_scalar(value: Any) -> Any:
            if value is None:
                raise DecodeError("null for a non-null field")
            if not isinstance(value, tp):
                raise DecodeError(expected)
            return value

        return decode_scalar
    return _decode_other


def _decode_datetime(value: Any) -> datetime:
    if value is None:
        raise DecodeError("null for a non-null field")
    if not isinstance(value, str):
        raise DecodeError("expected a date-time string")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise DecodeError(f"bad date-time {value[:40]!r}") from exc


def _decode_float(value: Any) -> Any:
    if value is None:
        raise DecodeError("null for a non-null field")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _decode_other(value: Any) -> Any:
    """Scalars the hub passes on as they came (IDs, JSON, custom scalars)."""
    if value is None:
        raise DecodeError("null for a non-null field")
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
