"""The record registry: each record type is declared once, as a ``RecordType``.

Everything else about a record type is derived from its declaration: the
tables (``schema.store.tables``), the GraphQL types, inputs and filters
(``schema.api``), the read API's fields (``schema.store``), the exported SDL
and JSON Schema (``schema.export``), the policy facts, bands and the Cedar
schema (``policies.records``), the capabilities a source announces and the
types the hub serves stale. Another package adds a record type through the
``linli.records`` entry-point group.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import SQLModel

from schema.geo import GeoPolygon
from schema.scopes import Scope

__all__ = [
    "Actor",
    "Band",
    "Fact",
    "FactValue",
    "Filter",
    "RecordType",
    "Registry",
    "code",
]

FactValue = bool | str | frozenset[str]
"""The value of one record fact: a flag, a code, or a set of organisation ids."""


def code(value: Any) -> str:
    """A code-list value as the string a fact holds ("" for none)."""
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who creates a record: the acting subject, and the person signed in (None: a machine)."""

    subject: str
    person: str | None = None
    """The person (a token's ``sub``) when one signed in, not a client acting for itself."""


@dataclass(frozen=True, slots=True)
class Fact:
    """A per-record fact the owner's policies may look at: an attribute of the Cedar entity.

    Facts are kept few and coarse on purpose: they are part of the decision
    cache key, so records that agree on them share one decision.
    """

    name: str
    kind: type[bool] | type[str] | type[frozenset[str]]
    """``bool`` is a Cedar ``Bool``, ``str`` a ``String``, ``frozenset`` a ``Set<Organisation>``."""
    of: Callable[[Mapping[str, Any]], FactValue]
    """The fact of one record (a dict of its public fields); a missing value must not widen."""
    typical: Callable[[str, str], FactValue]
    """(owner org, caller org) -> the value the baseline shares most widely, for ``explain``."""
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Filter:
    """A filter argument of one type's list field, besides those every type has.

    ``column``: the field it restricts (in the list given, or equal to the value);
    otherwise ``condition`` and ``test``: the SQL condition for a value (None: none),
    and whether a record as the caller is shown it passes. Filters see only the
    caller's view: SQL narrows the candidates (it must never drop a record the test
    would pass) and ``test`` decides on the shown values.
    """

    name: str
    annotation: Any
    column: str | None = None
    condition: Callable[[Any, Any], Any] | None = None
    test: Callable[[Mapping[str, Any], Any], bool] | None = None
    default: Any = None
    description: str | None = None

    def __post_init__(self) -> None:
        custom = self.condition is not None and self.test is not None
        if (self.column is None) != custom or (self.condition is None) != (self.test is None):
            raise ValueError(
                f"filter {self.name!r} needs a column, or a condition and a test, not both"
            )

    def passes(self, shown: Mapping[str, Any], value: Any) -> bool:
        """Whether a record, as the caller is shown it, passes this filter with ``value``."""
        if self.test is not None:
            return self.test(shown, value)
        field = shown.get(str(self.column))
        if field is None:
            return False  # hidden from the caller: never a match
        if isinstance(value, list):
            return code(field) in {code(v) for v in value}
        return bool(field == value)


@dataclass(frozen=True, slots=True)
class Band:
    """An approximate figure derived from exact ones, shown when exact quantities are not."""

    field: str
    count: Callable[[Mapping[str, Any]], int | None]


@dataclass(frozen=True, slots=True)
class RecordType:
    """One record type of the common schema, declared once."""

    name: str
    """As in global ids, GraphQL and Cedar: ``Resource``."""
    field_name: str
    """The read API's list field and the capability a source announces: ``resources``."""
    table_name: str
    create: type[SQLModel]
    """What staff (or an adapter) write; the table subclasses it."""
    public: type[SQLModel]
    """What may leave the owner: the envelope and every field nullable."""
    read_scopes: tuple[Scope, ...]
    """Any of these lets a client read the type at all; the first is its own."""
    update: type[SQLModel] | None = None
    """None: staff cannot change it (workflow records, records from an upstream system)."""
    state: type[SQLModel] | None = None
    """Columns the source sets itself (workflow state), stored besides ``create``'s."""
    staff_create: bool = True
    """Whether a source's own staff create it through GraphQL."""
    create_scopes: tuple[Scope, ...] = ()
    """Scopes besides ``records:write`` that let own staff create (not change) it."""
    create_verb: str = "create"
    initial_state: Callable[[Actor, datetime], dict[str, Any]] | None = None
    """(who creates it, now) -> the ``state`` columns of a new record."""
    derived: Callable[[Any], dict[str, Any]] | None = None
    """Public fields computed from a stored row."""
    search_fields: tuple[str, ...] = ()
    """Fields the ``text`` filter searches."""
    areas: Callable[[Mapping[str, Any]], list[GeoPolygon]] | None = None
    """For a type placed by areas, not by a ``location`` point (alerts): the areas of a
    record as the caller is shown it. ``near`` and ``bbox`` then match a record one of
    whose areas meets the circle or the box."""
    filters: tuple[Filter, ...] = ()
    facts: tuple[Fact, ...] = ()
    band: Band | None = None
    served_stale: bool = False
    """Slow-changing: the hub serves its last good answer while a source is down."""

    @property
    def scope(self) -> Scope:
        """The type's own read scope."""
        return self.read_scopes[0]


class Registry(Mapping[str, RecordType]):
    """The record types by name, in declaration order; names, fields and tables unique."""

    def __init__(self, record_types: Iterable[RecordType]) -> None:
        self._by_name: dict[str, RecordType] = {}
        for record_type in record_types:
            self._check_new(record_type)
            self._by_name[record_type.name] = record_type

    def _check_new(self, new: RecordType) -> None:
        for known in self._by_name.values():
            for attribute in ("name", "field_name", "table_name"):
                if getattr(known, attribute) == getattr(new, attribute):
                    raise ValueError(
                        f"record type {new.name}: {attribute} {getattr(new, attribute)!r}"
                        f" is already used by {known.name}"
                    )

    def __getitem__(self, name: str) -> RecordType:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"unknown record type {name!r}; known: {', '.join(self._by_name)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def by_field(self, field_name: str) -> RecordType:
        """The record type whose list field (capability) is ``field_name``."""
        for record_type in self._by_name.values():
            if record_type.field_name == field_name:
                return record_type
        raise KeyError(f"no record type has the field {field_name!r}")

    @property
    def field_names(self) -> tuple[str, ...]:
        """Every record type's list field, in declaration order."""
        return tuple(r.field_name for r in self._by_name.values())
