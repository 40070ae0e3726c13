"""Alerts: the CAP 1.2 alert / info / area structure, every element kept."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlmodel import SQLModel

from schema.enums import (
    CapCategory,
    CapCertainty,
    CapMsgType,
    CapScope,
    CapSeverity,
    CapStatus,
    CapUrgency,
)
from schema.fields import FieldGroup, grouped
from schema.geo import GeoPolygon
from schema.records._family import public_model, update_model
from schema.records._registry import Fact, Filter, RecordType, code
from schema.scopes import Scope
from schema.storage import PydanticJSON, UTCDateTime, utcnow

__all__ = [
    "RECORD",
    "AlertArea",
    "AlertBase",
    "AlertCreate",
    "AlertInfo",
    "AlertPublic",
    "AlertResource",
    "AlertUpdate",
    "NameValue",
    "alert_active",
    "alert_areas",
    "shifted",
]


class NameValue(SQLModel):
    """A CAP ``valueName``/``value`` pair (eventCode, parameter, geocode)."""

    value_name: str
    value: str


class AlertResource(SQLModel):
    """A CAP ``resource``: a file that belongs to the alert."""

    resource_desc: str
    mime_type: str | None = None
    size: int | None = None
    uri: str | None = None
    deref_uri: str | None = None
    digest: str | None = None


class AlertArea(SQLModel):
    """A CAP ``area``; ``geometry`` is its polygons and circles as GeoJSON."""

    area_desc: str
    polygons: list[str] = []
    circles: list[str] = []
    geocodes: list[NameValue] = []
    altitude: float | None = None
    ceiling: float | None = None
    geometry: list[GeoPolygon] = []


class AlertInfo(SQLModel):
    """A CAP ``info`` block."""

    language: str = "en-US"
    categories: list[CapCategory]
    event: str
    response_types: list[str] = []
    urgency: CapUrgency
    severity: CapSeverity
    certainty: CapCertainty
    audience: str | None = None
    event_codes: list[NameValue] = []
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: list[NameValue] = []
    resources: list[AlertResource] = []
    areas: list[AlertArea] = []


class AlertBase(SQLModel):
    """A CAP 1.2 ``alert`` message."""

    identifier: str = grouped(FieldGroup.IDENTITY, max_length=500)
    sender: str = grouped(FieldGroup.IDENTITY, max_length=500)
    sent: datetime = grouped(FieldGroup.STATUS, sa_type=UTCDateTime)
    status: CapStatus = grouped(FieldGroup.STATUS)
    msg_type: CapMsgType = grouped(FieldGroup.STATUS)
    source: str | None = grouped(FieldGroup.IDENTITY, default=None)
    scope: CapScope = grouped(FieldGroup.IDENTITY)
    restriction: str | None = grouped(FieldGroup.IDENTITY, default=None)
    addresses: str | None = grouped(FieldGroup.CONTACT, default=None)
    codes: list[str] = grouped(
        FieldGroup.IDENTITY, default_factory=list, sa_type=PydanticJSON(list[str])
    )
    note: str | None = grouped(FieldGroup.DESCRIPTION, default=None)
    references: list[str] = grouped(
        FieldGroup.IDENTITY, default_factory=list, sa_type=PydanticJSON(list[str])
    )
    incidents: list[str] = grouped(
        FieldGroup.IDENTITY, default_factory=list, sa_type=PydanticJSON(list[str])
    )
    infos: list[AlertInfo] = grouped(
        FieldGroup.DESCRIPTION, default_factory=list, sa_type=PydanticJSON(list[AlertInfo])
    )


class AlertCreate(AlertBase):
    """A new alert."""


AlertUpdate = update_model(AlertBase, "AlertUpdate")
AlertPublic = public_model(
    AlertBase,
    "AlertPublic",
    {"active": (bool | None, grouped(FieldGroup.STATUS, default=None))},
)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def alert_active(alert: Any, now: datetime) -> bool:
    """Whether an alert (a model or a stored row) is in force at ``now``.

    Active: not a Cancel, and not expired. An alert has expired when every one of its
    info blocks has an ``expires`` at or before ``now``; an info block without
    ``expires`` never expires, nor does an alert without info blocks. (A source may
    also end an alert early: the CAP adapter marks one that a later Update or Cancel
    references as inactive.)
    """
    if getattr(alert, "msg_type", None) == CapMsgType.CANCEL:
        return False
    infos: list[AlertInfo] = list(getattr(alert, "infos", None) or [])
    return not infos or any(i.expires is None or _utc(i.expires) > now for i in infos)


def alert_areas(shown: Mapping[str, Any]) -> list[GeoPolygon]:
    """Every area of an alert as the caller is shown it: its polygons and circles as GeoJSON."""
    areas: list[GeoPolygon] = []
    for info in shown.get("infos") or []:
        for area in _get(info, "areas") or []:
            areas += [GeoPolygon.model_validate(g) for g in _get(area, "geometry") or []]
    return areas


def _get(value: Any, name: str) -> Any:
    # Shown values hold models from the store, or their JSON as a source answered them.
    return value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)


_AlertT = TypeVar("_AlertT", bound=AlertBase)


def shifted(alert: _AlertT, by: timedelta) -> _AlertT:
    """The alert with every time in it moved by ``by`` (samples made current).

    ``sent``, each info's ``effective``, ``onset`` and ``expires``, and the sent time
    of each ``references`` entry (``sender,identifier,sent``) move alike, so the
    messages that reference each other still match.
    """

    def moved(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment + by

    def reference(entry: str) -> str:
        parts = entry.split(",")
        try:
            parts[2] = (datetime.fromisoformat(parts[2]) + by).isoformat()
        except (IndexError, ValueError):
            return entry
        return ",".join(parts)

    infos = [
        info.model_copy(
            update={
                "effective": moved(info.effective),
                "onset": moved(info.onset),
                "expires": moved(info.expires),
            }
        )
        for info in alert.infos
    ]
    return alert.model_copy(
        update={
            "sent": alert.sent + by,
            "infos": infos,
            "references": [reference(r) for r in alert.references],
        }
    )


def _active_only(table: Any, active_only: bool) -> Any:
    # SQL leaves out Cancels only; expiry is in the info blocks, decided on ``active``.
    return table.msg_type != CapMsgType.CANCEL.value if active_only else None


RECORD = RecordType(
    name="Alert",
    field_name="alerts",
    table_name="alerts",
    create=AlertCreate,
    public=AlertPublic,
    read_scopes=(Scope.ALERTS_READ,),
    staff_create=False,
    derived=lambda row: {"active": alert_active(row, utcnow())},
    search_fields=("identifier", "sender", "note"),
    areas=alert_areas,
    filters=(
        Filter("statuses", list[CapStatus] | None, column="status"),
        Filter(
            "active_only",
            bool,
            condition=_active_only,
            test=lambda shown, active_only: not active_only or shown.get("active") is True,
            default=False,
            description="Only alerts in force: not a Cancel, not expired (an info block without "
            "expires, or with one still ahead), not ended by a later Update or Cancel",
        ),
    ),
    facts=(
        Fact(
            "scope",
            str,
            of=lambda record: code(record.get("scope")),
            typical=lambda owner, caller: CapScope.PUBLIC.value,
            doc="CAP scope: Public | Restricted | Private",
        ),
    ),
)
