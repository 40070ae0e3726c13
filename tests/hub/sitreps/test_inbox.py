"""``POST /sitreps/inbox``: versions from a hub below, each bad one refused with its code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from schema.enums import OrgKind
from tests.hub.sitreps.conftest import COUNT, District, client_token, register_client

LOWER = "110106"  # a district below this hub (the test's hub plays its superior)
LOWER_HUB = "hub-110106"


def version(
    number: int = 1, *, kind: str = "initial", local: str = "r1", **fields: Any
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "id": f"SituationReport:{LOWER_HUB}:{local}",
        "origin": LOWER_HUB,
        "originDistrict": LOWER,
        "incidentId": f"Incident:{LOWER}001001:i1",
        "incidentOwner": f"{LOWER}001001",
        "incidentTitle": "丰台区某路段塌陷",
        "incidentStartedAt": now,
        "kind": kind,
        "severity": "III",
        "version": number,
        "fields": {"summary": "路面塌陷 Road collapsed", "injured": 1, **fields},
        "submittedAt": now,
    }


async def _post(district: District, token: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30.0) as http:
        return await http.post(
            f"{district.url}/sitreps/inbox",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )


def _code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


async def _stored(district: District) -> list[tuple[str, int]]:
    data = await district.office.data(COUNT)
    return sorted(
        (e["node"]["id"], e["node"]["version"]) for e in data["situationReports"]["edges"]
    )


async def test_the_same_version_twice_is_a_duplicate_and_other_content_a_conflict(
    start_district: Callable[..., Any],
) -> None:
    district: District = await start_district()
    lower = await register_client(
        district.hub.db_url, org=LOWER, kind=OrgKind.HUB, scopes="sitrep:submit", district=None
    )
    token = await client_token(district.url, *lower, "sitrep:submit")
    first = await _post(district, token, version())
    assert first.json() == {"status": "accepted", "report_id": version()["id"], "version": 1}
    again = await _post(district, token, version())
    assert again.json()["status"] == "duplicate"
    changed = await _post(district, token, version(injured=5))
    assert changed.status_code == 400
    assert _code(changed) == "REPORT_VERSION_CONFLICT"
    assert await _stored(district) == [(version()["id"], 1)]
    report = (
        await district.office.data(
            "query($id: ID!) { situationReport(id: $id) { fields { injured } versions "
            "{ version } } }",
            {"id": version()["id"]},
        )
    )["situationReport"]
    assert report == {"fields": {"injured": 1}, "versions": [{"version": 1}]}


async def test_bad_versions_from_below_are_refused_and_nothing_is_stored(
    start_district: Callable[..., Any],
) -> None:
    district: District = await start_district()
    lower = await register_client(
        district.hub.db_url, org=LOWER, kind=OrgKind.HUB, scopes="sitrep:submit", district=None
    )
    token = await client_token(district.url, *lower, "sitrep:submit")
    other = await register_client(
        district.hub.db_url, org="110107", kind=OrgKind.HUB, scopes="sitrep:submit", district=None
    )
    other_token = await client_token(district.url, *other, "sitrep:submit")
    reader = await register_client(
        district.hub.db_url, org=LOWER, kind=OrgKind.HUB, scopes="sitrep:read", district=None
    )
    reader_token = await client_token(district.url, *reader, "sitrep:read")
    # Relaying is for the hub of the origin's own city or province, and only a hub.
    far = await register_client(
        district.hub.db_url, org="hub-120100", kind=OrgKind.HUB, scopes="sitrep:submit",
        district="120100",
    )  # fmt: skip
    far_token = await client_token(district.url, *far, "sitrep:submit")
    office = await register_client(
        district.hub.db_url, org="110100400001", kind=OrgKind.DEPARTMENT,
        scopes="sitrep:submit", district="110100",
    )  # fmt: skip
    office_token = await client_token(district.url, *office, "sitrep:submit")
    cases = [
        (token, version(kind="final", local="f1"), "REPORT_OUT_OF_ORDER"),
        (token, version(kind="follow_up", local="u1"), "REPORT_OUT_OF_ORDER"),
        (token, version(place="地" * 501), "STRING_TOO_LONG"),
        (token, version(deaths=-1), "OUT_OF_RANGE"),
        (token, version(kind="preliminary"), "INVALID_ENUM_VALUE"),
        (token, {**version(), "id": "SituationReport:hub-elsewhere:r1"}, "INVALID_ID"),
        (token, {**version(), "version": 0}, "OUT_OF_RANGE"),
        (token, {**version(), "submittedAt": "2026-11-30T10:00:00"}, "INVALID_DATETIME"),
        (token, {k: v for k, v in version().items() if k != "fields"}, "MISSING_FIELD"),
        (token, [version()], "INVALID_JSON"),
        (other_token, version(), "FORBIDDEN"),  # another district's client
        (reader_token, version(), "FORBIDDEN"),  # no sitrep:submit
        (far_token, version(), "FORBIDDEN"),  # another city's hub
        (office_token, version(), "FORBIDDEN"),  # the city, but not its hub
    ]
    for caller, body, code in cases:
        response = await _post(district, caller, body)
        assert _code(response) == code, (body, response.text)
    async with httpx.AsyncClient(timeout=30.0) as http:
        unauthenticated = await http.post(f"{district.url}/sitreps/inbox", json=version())
        not_json = await http.post(
            f"{district.url}/sitreps/inbox",
            content=b"{",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert (unauthenticated.status_code, _code(unauthenticated)) == (401, "UNAUTHENTICATED")
    assert _code(not_json) == "INVALID_JSON"
    assert await _stored(district) == []
