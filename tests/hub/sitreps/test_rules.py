"""Drafts prefilled through the federation, edits, versions, and each refusal with its code."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from hub.governance.audit import AUDIT_LOG
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import GraphQLClient
from tests.hub.sitreps.conftest import (
    COUNT,
    CREATE,
    EDIT,
    INCIDENT_TEXT,
    INCIDENT_TITLE,
    OFFICE,
    REPORT,
    SHELTER_NAME,
    SUBMIT,
    District,
)


async def _count(district: District) -> list[tuple[str, int]]:
    data = await district.office.data(COUNT)
    return sorted(
        (e["node"]["id"], e["node"]["version"]) for e in data["situationReports"]["edges"]
    )


async def _audited(district: District, action: str) -> list[dict[str, Any]]:
    db = Database(district.hub.db_url)
    try:
        async with db.sessions() as session:
            rows = await session.execute(
                sa.select(AUDIT_LOG).where(AUDIT_LOG.c.action == action).order_by(AUDIT_LOG.c.seq)
            )
            return [{**row, "decision": json.loads(row["decision"])} for row in rows.mappings()]
    finally:
        await db.dispose()


async def test_a_draft_is_prefilled_from_what_the_caller_sees_then_edited_and_versioned(
    start_district: Callable[..., Any],
) -> None:
    district: District = await start_district()
    incident = await district.add_incident()
    draft = await district.create(incident)
    fields = draft["fields"]
    assert draft["status"] == "DRAFT"
    assert draft["version"] == 0
    assert draft["revision"] == 1
    assert draft["kind"] == "INITIAL"
    assert draft["severity"] == "II"
    assert INCIDENT_TITLE in fields["summary"]
    assert INCIDENT_TEXT in fields["summary"]
    assert fields["place"] == "朝阳区永安里东街1号"
    assert fields["affectedPeople"] == 120
    assert f"{SHELTER_NAME}: 安置 40/300 人" in fields["measures"]  # the shelter nearby, exact
    assert {(b["path"], b["status"]) for b in draft["basis"]} >= {
        ("incident", "ok"),
        ("shelters", "ok"),
    }
    assert draft["dueAt"] is not None
    assert not draft["overdue"]

    edited = await district.office.data(
        EDIT,
        {
            "id": draft["id"],
            "rev": 1,
            "fields": {"deaths": 0, "injured": 2, "needs": "抽水泵 2 台"},
        },
    )
    edited = edited["editSituationReport"]
    assert edited["revision"] == 2
    assert (edited["fields"]["injured"], edited["fields"]["needs"]) == (2, "抽水泵 2 台")
    assert edited["fields"]["summary"] == fields["summary"]  # what was not sent stays

    first = (await district.office.data(SUBMIT, {"id": draft["id"], "rev": 2}))[
        "submitSituationReport"
    ]
    assert (first["status"], first["version"]) == ("SUBMITTED", 1)
    again = await district.office.data(
        EDIT, {"id": draft["id"], "rev": 2, "fields": {"injured": 3}}
    )
    assert again["editSituationReport"]["status"] == "DRAFT"
    second = (await district.office.data(SUBMIT, {"id": draft["id"], "rev": 3}))[
        "submitSituationReport"
    ]
    assert second["version"] == 2
    assert [v["version"] for v in second["versions"]] == [1, 2]
    # Without a superior hub nothing is owed upwards.
    assert [v["forwardedAt"] for v in second["versions"]] == [None, None]
    audited = await _audited(district, "sitrep.submit")
    assert [row["decision"]["version"] for row in audited] == [1, 2]
    assert {row["org"] for row in audited} == {OFFICE}
    # The prefill's reads of the node were relayed as the office, and audited as such.
    relays = await _audited(district, "relay")
    assert {(r["record_type"], r["org"]) for r in relays} >= {("Incident", OFFICE)}


async def test_a_final_report_before_the_initial_one_is_refused(
    start_district: Callable[..., Any],
) -> None:
    district: District = await start_district()
    incident = await district.add_incident()
    for kind in ("FINAL", "FOLLOW_UP"):
        body = await district.office.post(
            "mutation($i: String!, $k: ReportKind!) { createSituationReport(incidentId: $i,"
            " kind: $k) { id } }",
            {"i": incident, "k": kind},
        )
        error = body["errors"][0]["extensions"]
        assert (error["code"], error["needs"], error["incidentId"]) == (
            "REPORT_OUT_OF_ORDER",
            "initial",
            incident,
        )
    assert await _count(district) == []
    initial = await district.create(incident)
    # Once the initial one is drafted but not submitted, a final is still out of order.
    code = await district.office.error_code(
        "mutation($i: String!) { createSituationReport(incidentId: $i, kind: FINAL) { id } }",
        {"i": incident},
    )
    assert code == "REPORT_OUT_OF_ORDER"
    await district.office.data(SUBMIT, {"id": initial["id"], "rev": 1})
    final = await district.create(incident, "FINAL")
    await district.office.data(SUBMIT, {"id": final["id"], "rev": 1})
    # Nothing follows a final report.
    code = await district.office.error_code(
        "mutation($i: String!) { createSituationReport(incidentId: $i, kind: FOLLOW_UP) { id } }",
        {"i": incident},
    )
    assert code == "REPORT_OUT_OF_ORDER"
    assert sorted(v for _, v in await _count(district)) == [1, 1]


async def test_submitting_the_same_revision_twice_is_refused_and_writes_nothing(
    start_district: Callable[..., Any],
) -> None:
    district: District = await start_district()
    draft = await district.create(await district.add_incident())
    await district.office.data(SUBMIT, {"id": draft["id"], "rev": 1})
    body = await district.office.post(SUBMIT, {"id": draft["id"], "rev": 1})
    error = body["errors"][0]["extensions"]
    assert (error["code"], error["reportId"], error["version"]) == (
        "REPORT_ALREADY_SUBMITTED",
        draft["id"],
        1,
    )
    report = (await district.office.data(REPORT, {"id": draft["id"]}))["situationReport"]
    assert [v["version"] for v in report["versions"]] == [1]
    assert len(await _audited(district, "sitrep.submit")) == 1
    # An edit made against an older revision is stale.
    code = await district.office.error_code(
        EDIT, {"id": draft["id"], "rev": 0, "fields": {"injured": 1}}
    )
    assert code == "STALE_VERSION"


async def test_a_field_over_its_limit_is_refused_and_nothing_changes(
    start_district: Callable[..., Any],
) -> None:
    district: District = await start_district()
    draft = await district.create(await district.add_incident())
    for fields, code, name in (
        ({"place": "地" * 501}, "STRING_TOO_LONG", "fields.place"),
        ({"needs": "x" * 4001}, "STRING_TOO_LONG", "fields.needs"),
        ({"deaths": -1}, "OUT_OF_RANGE", "fields.deaths"),
    ):
        body = await district.office.post(EDIT, {"id": draft["id"], "rev": 1, "fields": fields})
        error = body["errors"][0]["extensions"]
        assert (error["code"], error["field"]) == (code, name)
    report = (await district.office.data(REPORT, {"id": draft["id"]}))["situationReport"]
    assert report["revision"] == 1
    assert report["fields"] == draft["fields"]


async def test_a_draft_on_a_malformed_or_foreign_id_is_refused_and_nothing_is_written(
    start_district: Callable[..., Any],
) -> None:
    district: District = await start_district()
    incident = await district.add_incident()
    resource = incident.replace("Incident:", "Resource:", 1)
    for bad in ("", "not-an-id", resource):
        body = await district.office.post(CREATE, {"incident": bad, "kind": "INITIAL"})
        error = body["errors"][0]["extensions"]
        assert (error["code"], error["field"]) == ("INVALID_ID", "incidentId"), bad
    assert (await district.office.data(COUNT))["situationReports"]["edges"] == []


async def test_reports_need_their_scopes(start_district: Callable[..., Any]) -> None:
    district: District = await start_district()
    incident = await district.add_incident()
    reader = await district.hub.graphql(
        org=OFFICE, kind=OrgKind.DEPARTMENT, scopes="incidents:read sitrep:read"
    )
    code = await reader.error_code(
        "mutation($i: String!) { createSituationReport(incidentId: $i, kind: INITIAL) { id } }",
        {"i": incident},
    )
    assert code == "FORBIDDEN"
    writer_only = await district.hub.graphql(
        org=OFFICE, kind=OrgKind.DEPARTMENT, scopes="incidents:read sitrep:write"
    )
    body = await writer_only.post(COUNT)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _count(district) == []


async def test_a_draft_holds_only_what_the_caller_may_see(
    start_district: Callable[..., Any],
) -> None:
    district: District = await start_district()
    incident = await district.add_incident()
    # A department of another district: the node's policy shows it no incident at all.
    token = await district.hub.client_token(
        org="110106400001",
        kind=OrgKind.DEPARTMENT,
        scopes="incidents:read shelters:read sitrep:write sitrep:read",
        district="110106",
    )
    outsider = GraphQLClient(district.url, token)
    district.hub.clients.append(outsider)
    body = await outsider.post(
        "mutation($i: String!) { createSituationReport(incidentId: $i, kind: INITIAL) { id } }",
        {"i": incident},
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert await _count(district) == []
