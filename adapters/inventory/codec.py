"""Inventory rows to Resources: a column mapping, every row checked, each rejection explained.

Codes of rejected rows (``line`` is the file's own line or spreadsheet row):

    INVENTORY_MISSING_COLUMN    a mapped column is not in the header (line 1; nothing imported)
    INVENTORY_MISSING_VALUE     a required cell is empty
    INVENTORY_BAD_NUMBER        quantity or available is not a whole number from 0 up
    UNKNOWN_RESOURCE_KIND       the kind is neither a kind code nor a known name of one
    AVAILABLE_EXCEEDS_QUANTITY  more available than held
    INVENTORY_DUPLICATE_ITEM    the item code already appeared in this file
    INVALID_VALUE               the schema refuses a value (too long, ...)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from adapters.base import Keyed
from adapters.inventory.client import InventorySettings, Sheet
from schema.codes import RESOURCE_KINDS
from schema.records import ResourceCreate
from schema.records.resource import MAX_QUANTITY

__all__ = ["REQUIRED_FIELDS", "RowProblem", "RowsRead", "kind_lookup", "resources_from_sheet"]

REQUIRED_FIELDS = ("item_code", "name", "kind", "quantity", "unit")
_OPTIONAL_FIELDS = ("available", "address", "description")


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one line was not imported."""

    line: int
    code: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "reason": self.reason}


@dataclass(slots=True)
class RowsRead:
    """The resources of the rows that passed, keyed by warehouse and item code, and the rest."""

    records: list[Keyed[ResourceCreate]] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)
    fatal: bool = False


def kind_lookup(settings: InventorySettings) -> dict[str, str]:
    """Every accepted spelling of a kind (code, Chinese and English names) -> its code."""
    names: dict[str, str] = {}
    for kind in RESOURCE_KINDS.values():
        for spelling in (kind.code, kind.name_zh, kind.name_en):
            names[spelling.casefold()] = kind.code
    for spelling, code in settings.kind_names.items():
        names[spelling.casefold()] = code
    return names


def _whole_number(text: str, name: str) -> tuple[int | None, str | None]:
    cleaned = text.replace(",", "").replace("，", "").strip()
    try:
        number = float(cleaned)
    except ValueError:
        return None, f"{name} {text[:40]!r} is not a number"
    if not number.is_integer() or number < 0 or number > MAX_QUANTITY:
        return None, f"{name} {text[:40]!r} is not a whole number from 0 to {MAX_QUANTITY}"
    return int(number), None


def resources_from_sheet(sheet: Sheet, settings: InventorySettings) -> RowsRead:
    """Check every row against the mapping and the schema; keep the good ones."""
    read = RowsRead()
    columns = settings.columns
    positions: dict[str, int] = {}
    missing = [f for f in REQUIRED_FIELDS if f not in columns]
    if missing:
        read.rejected.append(
            RowProblem(1, "INVENTORY_MISSING_COLUMN", f"the mapping has no column for {missing}")
        )
        read.fatal = True
        return read
    headers = [h.strip() for h in sheet.headers]
    for name, header in columns.items():
        if name not in REQUIRED_FIELDS + _OPTIONAL_FIELDS:
            read.rejected.append(
                RowProblem(1, "INVENTORY_MISSING_COLUMN", f"{name!r} is not an inventory field")
            )
            read.fatal = True
            continue
        if header not in headers:
            read.rejected.append(
                RowProblem(1, "INVENTORY_MISSING_COLUMN", f"no column {header!r} (for {name})")
            )
            read.fatal = True
            continue
        positions[name] = headers.index(header)
    if read.fatal:
        return read
    kinds = kind_lookup(settings)
    seen: dict[str, int] = {}
    for line, row in sheet.rows:
        values = {n: (row[i] if i < len(row) else "").strip() for n, i in positions.items()}
        problem = _check_row(line, values, kinds, seen)
        if isinstance(problem, RowProblem):
            read.rejected.append(problem)
            continue
        key = f"{settings.warehouse}/{values['item_code']}"
        seen[values["item_code"]] = line
        read.records.append(Keyed(key, _resource(line, values, problem, settings, read)))
    read.records = [r for r in read.records if r.record is not None]
    return read


def _check_row(
    line: int, values: dict[str, str], kinds: dict[str, str], seen: dict[str, int]
) -> RowProblem | dict[str, Any]:
    for name in REQUIRED_FIELDS:
        if not values[name]:
            return RowProblem(line, "INVENTORY_MISSING_VALUE", f"{name} is empty")
    if values["item_code"] in seen:
        first = seen[values["item_code"]]
        return RowProblem(
            line,
            "INVENTORY_DUPLICATE_ITEM",
            f"item code {values['item_code']!r} already on line {first}",
        )
    kind = kinds.get(values["kind"].casefold())
    if kind is None:
        return RowProblem(
            line, "UNKNOWN_RESOURCE_KIND", f"{values['kind'][:40]!r} is not a known resource kind"
        )
    quantity, error = _whole_number(values["quantity"], "quantity")
    if quantity is None:
        return RowProblem(line, "INVENTORY_BAD_NUMBER", error or "")
    available = quantity
    if values.get("available"):
        available_value, error = _whole_number(values["available"], "available")
        if available_value is None:
            return RowProblem(line, "INVENTORY_BAD_NUMBER", error or "")
        available = available_value
    if available > quantity:
        return RowProblem(
            line,
            "AVAILABLE_EXCEEDS_QUANTITY",
            f"available ({available}) exceeds quantity ({quantity})",
        )
    return {"kind": kind, "quantity": quantity, "available": available}


def _resource(
    line: int,
    values: dict[str, str],
    checked: dict[str, Any],
    settings: InventorySettings,
    read: RowsRead,
) -> Any:
    try:
        return ResourceCreate(
            kind=checked["kind"],
            name=values["name"],
            quantity=checked["quantity"],
            available=checked["available"],
            unit=values["unit"],
            address=values.get("address") or settings.warehouse_address,
            description=values.get("description", ""),
        )
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        read.rejected.append(RowProblem(line, "INVALID_VALUE", f"{where}: {first['msg']}"))
        return None
