"""Totals that travel up: counts and sums by area, kind and status, computed where data lives.

A source (node, adapter) computes its totals over its own live records, counting only
the records the owner's policy lets the caller count (``read_aggregate``: superiors,
the district and the owner by default; see ``policies/cedar/baseline.cedar``). A hub
sums its sources' totals by the same keys, so a city or a province reads a total
without pulling one record. ``area`` is the county-level code of the records' owner,
so totals stay per district at every level.

    resources   kind (resource kind code), status       count, quantity, available
    shelters    status                                  count, capacity, occupancy
    incidents   kind (severity level I-IV), status      count, affected
    riskFlags   kind (risk category code), status       count, oldestAt (the lag)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import strawberry
from sqlmodel import select

from schema.store.resolvers import public_values
from schema.store.specs import RecordSpec

__all__ = [
    "AGGREGATED_TYPES",
    "AGGREGATES_FIELD",
    "AggregateContext",
    "Aggregates",
    "Total",
    "aggregates_field",
    "sum_totals",
    "totals_of",
]

AGGREGATES_FIELD = "aggregates"
"""The root field (and well-known capability) of totals."""

#: Record type: (the field totals are split by besides status, the fields summed).
_PLAN: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "Resource": ("kind", ("quantity", "available")),
    "Shelter": (None, ("capacity", "occupancy")),
    "Incident": ("severity_level", ("affected_people",)),
    "RiskFlag": ("category", ()),
}
AGGREGATED_TYPES = tuple(_PLAN)
#: The most records one source counts per type in one request.
MAX_COUNTED = 100_000


@strawberry.type(description="One total: records of a type in an area, by kind and status")
class Total:
    record_type: str
    area: str = strawberry.field(description="County-level GB/T 2260 code of the owners")
    kind: str | None = strawberry.field(
        description="Resource kind, incident severity level or risk category; null for shelters"
    )
    status: str
    count: int
    quantity: int | None = None
    available: int | None = None
    capacity: int | None = None
    occupancy: int | None = None
    affected: int | None = strawberry.field(default=None, description="Incidents' affected people")
    oldest_at: datetime | None = strawberry.field(
        default=None, description="Risk flags: when the oldest of them was raised (its lag)"
    )


@strawberry.type(description="Totals of the records the caller may count, by area, kind, status")
class Aggregates:
    totals: list[Total]


class AggregateContext(Protocol):
    """What the totals need from a source's GraphQL context."""

    db: Any

    @property
    def aggregate_area(self) -> str:
        """The county-level code of this source's owner."""
        ...

    async def aggregable(self, spec: RecordSpec, records: list[dict[str, Any]]) -> list[bool]:
        """Whether each record counts in the caller's totals, per the owner's policy."""
        ...


@dataclass(frozen=True)
class _Key:
    record_type: str
    area: str
    kind: str | None
    status: str


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def totals_of(spec: RecordSpec, records: Iterable[dict[str, Any]], area: str) -> list[Total]:
    """The totals of ``records`` (values by field name) of one type, in ``area``."""
    split, summed = _PLAN[spec.type_name]
    sums: dict[_Key, dict[str, Any]] = {}
    for record in records:
        kind = _text(record[split]) if split is not None else None
        key = _Key(spec.type_name, area, kind, _text(record["status"]))
        entry = sums.setdefault(key, {"count": 0, **dict.fromkeys(summed, 0)})
        entry["count"] += 1
        for name in summed:
            entry[name] += int(record.get(name) or 0)
        if spec.type_name == "RiskFlag":
            at = record.get("created_at")
            if at is not None and (entry.get("oldest_at") is None or at < entry["oldest_at"]):
                entry["oldest_at"] = at
    return [_total(key, entry) for key, entry in sums.items()]


def _total(key: _Key, entry: dict[str, Any]) -> Total:
    return Total(
        record_type=key.record_type,
        area=key.area,
        kind=key.kind,
        status=key.status,
        count=entry["count"],
        quantity=entry.get("quantity"),
        available=entry.get("available"),
        capacity=entry.get("capacity"),
        occupancy=entry.get("occupancy"),
        affected=entry.get("affected_people", entry.get("affected")),
        oldest_at=entry.get("oldest_at"),
    )


_SUMMED = ("quantity", "available", "capacity", "occupancy", "affected")


def sum_totals(parts: Iterable[Sequence[Total]]) -> list[Total]:
    """Totals of several sources summed by (type, area, kind, status), in a stable order."""
    sums: dict[_Key, dict[str, Any]] = {}
    for totals in parts:
        for total in totals:
            key = _Key(total.record_type, total.area, total.kind, total.status)
            entry = sums.setdefault(key, {"count": 0})
            entry["count"] += total.count
            for name in _SUMMED:
                value = getattr(total, name)
                if value is not None:
                    entry[name] = entry.get(name, 0) + value
            if total.oldest_at is not None and (
                entry.get("oldest_at") is None or total.oldest_at < entry["oldest_at"]
            ):
                entry["oldest_at"] = total.oldest_at
    ordered = sorted(sums, key=lambda k: (k.record_type, k.area, k.kind or "", k.status))
    return [_total(key, sums[key]) for key in ordered]


def aggregates_field(specs: dict[str, RecordSpec]) -> Any:
    """``aggregates``: the source's totals of the records the caller may count."""

    async def resolve(info: strawberry.Info[AggregateContext, None]) -> Aggregates:
        context = info.context
        parts: list[list[Total]] = []
        for name in AGGREGATED_TYPES:
            spec = specs.get(name)
            if spec is None:
                continue
            table: Any = spec.table
            async with context.db.sessions() as session:
                rows = list(
                    (
                        await session.execute(
                            select(table).where(table.retired_at.is_(None)).limit(MAX_COUNTED)
                        )
                    ).scalars()
                )
            records = [public_values(spec, row, context.aggregate_area) for row in rows]
            allowed = await context.aggregable(spec, records)
            counted = [r for r, ok in zip(records, allowed, strict=True) if ok]
            parts.append(totals_of(spec, counted, context.aggregate_area))
        return Aggregates(totals=sum_totals(parts))

    return strawberry.field(
        resolver=resolve,
        description="Totals by area, kind and status of the records the caller may count"
        " (policy: read_aggregate); no record is shown",
    )
