"""A draft's first content, read live through the federation as the person who asks for it.

Every read goes through the hub's own federation executor with the caller's identity,
so each owner's policy decides what the draft may contain (a field the caller may not
see stays empty; a band is written as a band) and each relay is in the audit log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.federation.executor import Federation, PageRequest
from hub.federation.reports import SourceReport
from hub.sitreps.model import ReportFields
from policies.caller import Caller
from schema.api.pagination import RecordOrder
from schema.enums import SeverityLevel
from schema.errors import InvalidInput
from schema.ids import GlobalId, InvalidGlobalId
from schema.store.specs import SPECS

__all__ = [
    "AREA_RADIUS_KM",
    "OPEN_PAGES",
    "IncidentFacts",
    "Prefill",
    "open_incidents",
    "prefill",
]

AREA_RADIUS_KM = 5.0
"""Shelters, flags and aid within this distance of the incident are 'in the area'."""
_PAGE = 100

_INCIDENT = (
    "{ id owner version createdAt updatedAt title category severityLevel status description"
    " address affectedPeople reportedAt location { type coordinates } }"
)
_SHELTER = (
    "{ id owner version createdAt updatedAt name capacity occupancy"
    " freeBedsBand { low high label } }"
)
_FLAG = "{ id owner version createdAt updatedAt category status estimatedSeverity }"
_AID = (
    "{ id owner version createdAt updatedAt provider requester resourceKind quantity unit status }"
)
_COMMITTED = ("COMMITTED", "DISPATCHED", "RECEIVED")
_OPEN = ("REPORTED", "ACTIVE", "CONTAINED")
_OPEN_SELECTION = "{ id owner version createdAt updatedAt severityLevel reportedAt }"
OPEN_PAGES = 20
"""At most this many pages of 100 open incidents are read per round."""


@dataclass(frozen=True)
class IncidentFacts:
    """What a report keeps of its incident."""

    id: str
    owner: str
    title: str
    severity: SeverityLevel
    started_at: datetime


@dataclass(frozen=True)
class Prefill:
    """The incident, the draft's fields and what each read contributed."""

    incident: IncidentFacts
    fields: ReportFields
    basis: list[dict[str, Any]]


def _basis(path: str, reports: list[SourceReport]) -> list[dict[str, Any]]:
    return [
        {"path": path, "source": r.source, "status": r.status.value, "count": r.count}
        for r in reports
    ]


async def prefill(
    federation: Federation, caller: Caller, incident_id: str, purpose: str | None
) -> Prefill:
    """Read the incident and its area as ``caller``; ``NotFound`` if the caller cannot see it."""
    try:
        parsed = GlobalId.parse(incident_id)
    except InvalidGlobalId as exc:
        raise InvalidInput(str(exc), code="INVALID_ID", field="incidentId") from exc
    if parsed.type != "Incident":
        raise InvalidInput(
            f"{incident_id} is a {parsed.type}, not an Incident", code="INVALID_ID",
            field="incidentId",
        )  # fmt: skip
    found = await federation.get(
        incident_id, caller, _INCIDENT, SPECS["Incident"].gql_type, purpose
    )
    incident = found.record
    basis = _basis("incident", [found.report])
    started = incident.reported_at or incident.created_at
    severity = SeverityLevel(incident.severity_level or SeverityLevel.IV)
    facts = IncidentFacts(
        id=incident.id,
        owner=incident.owner,
        title=(incident.title or "")[:200],
        severity=severity,
        started_at=started,
    )
    lines: dict[str, list[str]] = {"measures": [], "resources_used": [], "needs": []}
    location = incident.location
    if location is not None:
        lon, lat = location.coordinates[0], location.coordinates[1]
        near = {"near": {"lat": lat, "lon": lon, "radiusKm": AREA_RADIUS_KM}}
        shelters, reports = await _records(federation, caller, "Shelter", near, _SHELTER, purpose)
        basis += _basis("shelters", reports)
        lines["measures"] += _shelter_lines(shelters)
        flags, reports = await _records(federation, caller, "RiskFlag", near, _FLAG, purpose)
        basis += _basis("riskFlags", reports)
        if flags:
            by_status = Counter(str(getattr(f.status, "value", f.status)) for f in flags)
            counted = ", ".join(f"{status} {n}" for status, n in sorted(by_status.items()))
            lines["needs"].append(f"周边风险上报 {len(flags)} 条 Risk flags nearby: {counted}")
    aid, reports = await _records(
        federation, caller, "AidRequest", {"statuses": list(_COMMITTED)}, _AID, purpose
    )
    basis += _basis("aidRequests", reports)
    lines["resources_used"] += _aid_lines(aid, involved={facts.owner})
    fields = ReportFields(
        occurred_at=started,
        place=(incident.address or "")[:500],
        summary="\n".join(
            part for part in ((incident.title or ""), (incident.description or "")) if part
        )[:4000],
        affected_people=incident.affected_people or 0,
        measures="\n".join(lines["measures"])[:4000],
        resources_used="\n".join(lines["resources_used"])[:4000],
        needs="\n".join(lines["needs"])[:4000],
    )
    return Prefill(facts, fields, basis)


async def _records(
    federation: Federation,
    caller: Caller,
    type_name: str,
    where: dict[str, Any],
    selection: str,
    purpose: str | None,
) -> tuple[list[Any], list[SourceReport]]:
    """One page of up to 100 records the caller may see (none without the type's read scope)."""
    spec = SPECS[type_name]
    if not set(spec.read_scopes) & caller.scopes:
        return [], []
    page = await federation.list_page(
        spec,
        PageRequest(
            caller=caller,
            where=where,
            first=_PAGE,
            after=None,
            order=RecordOrder.CREATED_DESC,
            selection=selection,
            purpose=purpose,
        ),
    )
    return [node for _, node in page.edges], page.reports


def _shelter_lines(shelters: list[Any]) -> list[str]:
    lines = []
    for shelter in shelters:
        name = shelter.name or shelter.id
        if shelter.capacity is not None and shelter.occupancy is not None:
            lines.append(
                f"启用避难场所 {name}: 安置 {shelter.occupancy}/{shelter.capacity} 人"
                f" Shelter {name}: {shelter.occupancy} of {shelter.capacity} beds taken"
            )
        elif shelter.free_beds_band is not None:
            label = shelter.free_beds_band.label
            lines.append(f"避难场所 {name}: 空余床位 {label} Shelter {name}: free beds {label}")
    return lines


def _aid_lines(aid: list[Any], *, involved: set[str]) -> list[str]:
    totals: Counter[tuple[str, str]] = Counter()
    for request in aid:
        if request.quantity is None or not ({request.requester, request.provider} & involved):
            continue
        totals[(request.resource_kind or "?", request.unit or "")] += request.quantity
    return [
        f"互助调拨 Mutual aid committed: {kind} {n} {unit}" for (kind, unit), n in totals.items()
    ]


async def open_incidents(federation: Federation, caller: Caller) -> list[IncidentFacts]:
    """The open incidents ``caller`` may see, newest first, up to ``OPEN_PAGES`` pages.

    Not written to the hub's relay log: nothing is passed on to anyone (the nodes log the read).
    """
    found: list[IncidentFacts] = []
    after: str | None = None
    for _ in range(OPEN_PAGES):
        page = await federation.list_page(
            SPECS["Incident"],
            PageRequest(
                caller=caller,
                where={"statuses": list(_OPEN)},
                first=_PAGE,
                after=after,
                order=RecordOrder.CREATED_DESC,
                selection=_OPEN_SELECTION,
                purpose=None,
                audited=False,
            ),
        )
        for _, incident in page.edges:
            found.append(
                IncidentFacts(
                    id=incident.id,
                    owner=incident.owner,
                    title="",
                    severity=SeverityLevel(incident.severity_level or SeverityLevel.IV),
                    started_at=incident.reported_at or incident.created_at,
                )
            )
        if not page.has_next or page.end_cursor is None:
            break
        after = page.end_cursor
    return found
