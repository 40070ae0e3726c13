"""SenML (RFC 8428) in JSON: a pack of records, each resolved against the base fields before it.

Resolution (RFC 8428 section 4.6): a base field (``bn``, ``bt``, ``bu``,
``bv``, ``bs``, ``bver``) applies to its record and every later one until
redefined; the name is ``bn + n``, the time ``bt + t`` (a resolved time below
2**28 is relative to now), the unit ``u`` or else ``bu``, the value ``bv + v``.
Only numeric values are readings here (``vs``, ``vb``, ``vd`` are refused).

Validation is strict: a pack that is not a JSON array of objects, a base field
of the wrong type, a ``bver`` above 10 or a field ending in ``_`` (must
understand) refuses the whole pack (``SenmlInvalid``); a record without a
usable name, time or numeric value is refused on its own, with a code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from node.sensors.errors import SenmlInvalid
from schema.records.sensor import SENML_NAME

__all__ = ["RELATIVE_LIMIT", "ResolvedRecord", "parse_pack", "resolve_pack"]

RELATIVE_LIMIT = 2**28
"""Resolved times below this are seconds relative to now (RFC 8428 section 4.5.3)."""
SUPPORTED_VERSION = 10
_BASE_NUMBERS = ("bt", "bv", "bs")
_BASE_STRINGS = ("bn", "bu")
_NOT_NUMERIC = ("vs", "vb", "vd")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# datetime covers years 1..9999: a time outside them cannot be a reading's.
_LATEST = (datetime(9999, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()


@dataclass(frozen=True, slots=True)
class ResolvedRecord:
    """One record of a pack, resolved; ``error`` (a code) and ``message`` when refused alone."""

    index: int
    name: str | None = None
    time: datetime | None = None
    unit: str | None = None
    value: float | None = None
    error: str | None = None
    message: str | None = None


def parse_pack(body: bytes) -> list[Any]:
    """The JSON array of a SenML pack; ``SenmlInvalid`` when it is not one."""
    try:
        pack = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SenmlInvalid(f"the body is not JSON: {exc}", field="(body)") from exc
    if not isinstance(pack, list):
        raise SenmlInvalid("a SenML pack is a JSON array of records", field="(body)")
    return pack


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check_bases(index: int, record: dict[str, Any]) -> None:
    for name in _BASE_NUMBERS:
        if name in record and not _number(record[name]):
            raise SenmlInvalid(
                f"[{index}].{name} must be a finite number", field=f"[{index}].{name}"
            )
    for name in _BASE_STRINGS:
        if name in record and not isinstance(record[name], str):
            raise SenmlInvalid(f"[{index}].{name} must be a string", field=f"[{index}].{name}")
    if "bver" in record:
        bver = record["bver"]
        if not isinstance(bver, int) or isinstance(bver, bool) or bver < 1:
            raise SenmlInvalid(
                f"[{index}].bver must be a positive integer", field=f"[{index}].bver"
            )
        if bver > SUPPORTED_VERSION:
            raise SenmlInvalid(
                f"[{index}].bver {bver} is newer than SenML version {SUPPORTED_VERSION}",
                field=f"[{index}].bver",
            )
    for key in record:
        if key.endswith("_"):
            raise SenmlInvalid(
                f"[{index}].{key} must be understood (it ends in _) and is not",
                field=f"[{index}].{key}",
            )


def _refused(index: int, code: str, message: str) -> ResolvedRecord:
    return ResolvedRecord(index=index, error=code, message=f"[{index}]: {message}")


def resolve_pack(pack: Sequence[Any], *, now: datetime) -> list[ResolvedRecord]:
    """Resolve each record of ``pack`` against the base fields before it (``now``: relative t)."""
    base: dict[str, Any] = {"bn": "", "bt": 0.0, "bu": None, "bv": 0.0}
    resolved: list[ResolvedRecord] = []
    for index, record in enumerate(pack):
        if not isinstance(record, dict):
            raise SenmlInvalid(f"[{index}] is not a JSON object", field=f"[{index}]")
        _check_bases(index, record)
        for name in ("bn", "bt", "bu", "bv"):
            if name in record:
                base[name] = record[name]
        resolved.append(_resolve_one(index, record, base, now))
    return resolved


def _resolve_one(
    index: int, record: dict[str, Any], base: dict[str, Any], now: datetime
) -> ResolvedRecord:
    name = record.get("n", "")
    if not isinstance(name, str):
        return _refused(index, "SENML_INVALID", "n must be a string")
    full = f"{base['bn']}{name}"
    if not full:
        return _refused(index, "SENML_INVALID", "the record has no name (bn + n)")
    if not SENML_NAME.match(full):
        return _refused(index, "SENML_INVALID", f"{full[:60]!r} is not a valid SenML name")
    if any(key in record for key in _NOT_NUMERIC):
        return _refused(index, "SENML_NOT_NUMERIC", "only numeric values (v) are readings")
    if "s" in record and not _number(record["s"]):
        return _refused(index, "SENML_INVALID", "s must be a finite number")
    if "v" not in record and "bv" not in record:
        return _refused(index, "SENML_INVALID", "the record has no value (v)")
    raw_value = record.get("v", 0)
    if not _number(raw_value):
        return _refused(index, "SENML_INVALID", "v must be a finite number")
    value = float(base["bv"]) + float(raw_value)
    raw_time = record.get("t", 0)
    if not _number(raw_time):
        return _refused(index, "SENML_INVALID", "t must be a finite number")
    seconds = float(base["bt"]) + float(raw_time)
    unit = record.get("u", base["bu"])
    if unit is not None and not isinstance(unit, str):
        return _refused(index, "SENML_INVALID", "u must be a string")
    if abs(seconds) < RELATIVE_LIMIT:
        time = now + timedelta(seconds=seconds)
    elif seconds < 0 or seconds > _LATEST:
        return _refused(index, "TIME_OUT_OF_RANGE", f"time {seconds:g} is not a date")
    else:
        time = _EPOCH + timedelta(seconds=seconds)
    if not math.isfinite(value):
        return _refused(index, "SENML_INVALID", "bv + v is not a finite number")
    return ResolvedRecord(index=index, name=full, time=time, unit=unit, value=value)
