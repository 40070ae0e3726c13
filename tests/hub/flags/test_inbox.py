"""``POST /flags/inbox``: accepted once, duplicates change nothing, bad input is refused exactly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.hub.flags.conftest import COMMUNITY, DEPT_GAS, OTHER_COMMUNITY, FlagsHub, flag_message

StartHub = Callable[..., Awaitable[FlagsHub]]
FLAG_TABLES = ("flags", "flag_inbox_messages", "flag_events", "flag_outbox")


async def counts(hub: FlagsHub) -> dict[str, int]:
    return {table: await hub.count(table) for table in FLAG_TABLES}


async def test_accepted_then_duplicates_change_nothing(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    token = await hub.community_token()
    message = flag_message(local="f0001")
    first = await hub.inbox(token, message)
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "accepted", "flag_id": f"RiskFlag:{COMMUNITY}:f0001"}
    after_first = await counts(hub)
    assert after_first == {"flags": 1, "flag_inbox_messages": 1, "flag_events": 2, "flag_outbox": 1}

    again = await hub.inbox(token, message)  # the same delivery, retried by the node
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "flag_id": f"RiskFlag:{COMMUNITY}:f0001"}
    renewed = flag_message(local="f0001", description="changed on the way")  # new message id
    assert renewed["message_id"] != message["message_id"]
    third = await hub.inbox(token, renewed)
    assert third.json() == {"status": "duplicate", "flag_id": f"RiskFlag:{COMMUNITY}:f0001"}
    assert await counts(hub) == after_first

    department = await hub.graphql(await hub.department_token())
    data = await department.data(
        "query ($id: ID!) { flag(id: $id) { description status assignedTo version } }",
        {"id": f"RiskFlag:{COMMUNITY}:f0001"},
    )
    assert data["flag"] == {
        "description": message["flag"]["description"],
        "status": "ROUTED",
        "assignedTo": DEPT_GAS,
        "version": 1,
    }


BAD_INPUT = [
    pytest.param({"drop": ("category",)}, "MISSING_FIELD", "flag.category", id="missing-category"),
    pytest.param(
        {"category": "alien_invasion"},
        "UNKNOWN_RISK_CATEGORY",
        "flag.category",
        id="unknown-category",
    ),
    pytest.param(
        {"location": {"type": "Point", "coordinates": [116.4, 95.0]}},
        "INVALID_GEOMETRY",
        "flag.location.coordinates",
        id="latitude-out-of-range",
    ),
    pytest.param(
        {"location": {"type": "Point", "coordinates": [190.0, 39.9]}},
        "INVALID_GEOMETRY",
        "flag.location.coordinates",
        id="longitude-out-of-range",
    ),
    pytest.param(
        {"description": "险" * 4001},
        "STRING_TOO_LONG",
        "flag.description",
        id="description-too-long",
    ),
    pytest.param(
        {"id": "RiskFlag:110105009009:x1"}, "INVALID_ID", "flag.id", id="id-of-another-owner"
    ),
]


@pytest.mark.parametrize(("fields", "code", "field"), BAD_INPUT)
async def test_bad_flag_is_refused_with_its_code_and_nothing_written(
    start_flags_hub: StartHub, fields: dict[str, Any], code: str, field: str
) -> None:
    hub = await start_flags_hub()
    token = await hub.community_token()
    response = await hub.inbox(token, flag_message(**fields))
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["field"] == field
    assert await counts(hub) == dict.fromkeys(FLAG_TABLES, 0)


async def test_bad_envelope_is_refused(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    token = await hub.community_token()
    message = flag_message()
    del message["raised_at"]
    response = await hub.inbox(token, message)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {
        "code": "MISSING_FIELD",
        "field": "raised_at",
        "problems": [{"field": "raised_at", "message": "Field required"}],
    }
    not_json = await hub.http.post(
        f"{hub.url}/flags/inbox", content=b"{nope", headers={"Authorization": f"Bearer {token}"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["errors"][0]["extensions"]["code"] == "INVALID_JSON"
    assert await counts(hub) == dict.fromkeys(FLAG_TABLES, 0)


async def test_another_communitys_flag_is_forbidden(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    token = await hub.community_token(OTHER_COMMUNITY)
    response = await hub.inbox(token, flag_message(COMMUNITY))
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await counts(hub) == dict.fromkeys(FLAG_TABLES, 0)


async def test_without_the_flag_scope_is_forbidden(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    token = await hub.community_token(scopes="resources:read")
    response = await hub.inbox(token, flag_message())
    assert response.status_code == 403
    error = response.json()["errors"][0]["extensions"]
    assert error == {"code": "FORBIDDEN", "scope": "risk:flag"}
    assert await counts(hub) == dict.fromkeys(FLAG_TABLES, 0)


async def test_without_a_token_is_unauthenticated(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    response = await hub.http.post(f"{hub.url}/flags/inbox", json=flag_message())
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await counts(hub) == dict.fromkeys(FLAG_TABLES, 0)
