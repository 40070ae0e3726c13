"""The assigned department moves a flag through the workflow; nobody else, and only allowed moves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from schema.enums import OrgKind
from tests.hub.flags.conftest import (
    COMMUNITY,
    DEPT_DEFAULT,
    DEPT_GAS,
    DEPT_OTHER,
    OTHER_COMMUNITY,
    FlagsHub,
)

StartHub = Callable[..., Awaitable[FlagsHub]]

MOVE = """mutation ($id: ID!, $to: RiskFlagStatus!, $v: Int!, $note: String) {
  transitionFlag(id: $id, to: $to, expectedVersion: $v, note: $note) {
    id status version assignedTo deadlineAt
    transitions { status by org clientId note at }
    timeline { hop at } } }"""
CASE = "query ($id: ID!) { flag(id: $id) { status version assignedTo timeline { hop at } } }"


def hops(case: dict[str, Any]) -> dict[str, datetime]:
    return {h["hop"]: datetime.fromisoformat(h["at"]) for h in case["timeline"]}


async def test_the_assigned_department_walks_the_whole_workflow(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    flag_id = await hub.raise_flag(await hub.community_token())
    department = await hub.graphql(await hub.department_token())
    version = 1
    for to, note in [
        ("ACKNOWLEDGED", "收到 on our way"),
        ("VERIFYING", "inspector on site"),
        ("CONFIRMED", "leak confirmed at the riser"),
        ("RESOLVED", "valve replaced"),
    ]:
        case = (await department.data(MOVE, {"id": flag_id, "to": to, "v": version, "note": note}))[
            "transitionFlag"
        ]
        assert case["status"] == to
        assert case["version"] == version + 1
        assert case["deadlineAt"] is None
        step = case["transitions"][-1]
        assert step["status"] == to
        assert step["note"] == note
        assert step["org"] == DEPT_GAS
        assert step["clientId"].startswith(DEPT_GAS)
        version += 1
    steps = [s["status"] for s in case["transitions"]]
    assert steps == ["RAISED", "ROUTED", "ACKNOWLEDGED", "VERIFYING", "CONFIRMED", "RESOLVED"]
    assert case["transitions"][0]["org"] == COMMUNITY
    timeline = hops(case)
    assert list(timeline) == sorted(timeline, key=lambda h: timeline[h])
    assert set(timeline) == {
        "raised_at_node", "received_at_hub", "routed", "acknowledged", "verifying", "confirmed", "resolved",
    }  # fmt: skip
    assert timeline["raised_at_node"] <= timeline["received_at_hub"] <= timeline["routed"]
    assert (
        timeline["routed"]
        <= timeline["acknowledged"]
        <= timeline["verifying"]
        <= timeline["confirmed"]
        <= timeline["resolved"]
    )

    same = await department.data(
        "query ($id: ID!) { flagTimeline(id: $id) { hop at } }", {"id": flag_id}
    )
    assert {h["hop"] for h in same["flagTimeline"]} == set(timeline)
    community = await hub.graphql(await hub.community_token())
    assert (await community.data(CASE, {"id": flag_id}))["flag"]["status"] == "RESOLVED"

    lag = (await department.data("{ flagLag { hop p50Ms p90Ms p99Ms count } }"))["flagLag"]
    by_hop = {row["hop"]: row for row in lag}
    assert set(by_hop) == set(timeline)
    assert all(row["count"] == 1 for row in lag)
    resolved_ms = (timeline["resolved"] - timeline["raised_at_node"]).total_seconds() * 1000
    assert abs(by_hop["resolved"]["p50Ms"] - resolved_ms) < 1
    assert by_hop["acknowledged"]["p99Ms"] <= by_hop["resolved"]["p99Ms"]

    metrics = (await hub.http.get(f"{hub.url}/metrics")).text
    assert 'linli_flag_hop_seconds_count{hop="resolved"} 1.0' in metrics
    assert 'linli_flag_hop_seconds_count{hop="routed"} 1.0' in metrics


async def test_flag_lag_since_a_time_without_zone_is_refused(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    await hub.raise_flag(await hub.community_token())
    department = await hub.graphql(await hub.department_token())
    query = "query ($since: DateTime) { flagLag(since: $since) { hop count } }"
    # Found by the GraphQL fuzz test: a naive time reached the UTC column and answered INTERNAL.
    assert (
        await department.error_code(query, {"since": "2020-01-01T00:00:00"}) == "INVALID_DATETIME"
    )
    lag = (await department.data(query, {"since": "2020-01-01T00:00:00+08:00"}))["flagLag"]
    assert {row["hop"]: row["count"] for row in lag}["received_at_hub"] == 1


async def test_dismissed_then_resolved(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    flag_id = await hub.raise_flag(await hub.community_token())
    department = await hub.graphql(await hub.department_token())
    for version, to in enumerate(["ACKNOWLEDGED", "VERIFYING", "DISMISSED", "RESOLVED"], start=1):
        await department.data(MOVE, {"id": flag_id, "to": to, "v": version})
    case = (await department.data(CASE, {"id": flag_id}))["flag"]
    assert case["status"] == "RESOLVED"
    assert {"dismissed", "resolved"} <= set(hops(case))


async def test_refusals_have_exact_codes_and_change_nothing(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    community_token = await hub.community_token(scopes="risk:flag risk:verify")
    flag_id = await hub.raise_flag(community_token)
    department = await hub.graphql(await hub.department_token())

    skip = await department.post(MOVE, {"id": flag_id, "to": "CONFIRMED", "v": 1})
    assert skip["errors"][0]["extensions"] == {
        "code": "INVALID_TRANSITION",
        "from": "routed",
        "to": "confirmed",
    }

    other = await hub.graphql(await hub.department_token(DEPT_OTHER))
    assert (
        await other.error_code(MOVE, {"id": flag_id, "to": "ACKNOWLEDGED", "v": 1}) == "FORBIDDEN"
    )
    community = await hub.graphql(community_token)
    assert (
        await community.error_code(MOVE, {"id": flag_id, "to": "ACKNOWLEDGED", "v": 1})
        == "FORBIDDEN"
    )
    no_scope = await hub.graphql(await hub.department_token(scopes="resources:read"))
    assert (
        await no_scope.error_code(MOVE, {"id": flag_id, "to": "ACKNOWLEDGED", "v": 1})
        == "FORBIDDEN"
    )
    missing = await department.error_code(
        MOVE, {"id": f"RiskFlag:{COMMUNITY}:nope", "to": "ACKNOWLEDGED", "v": 1}
    )
    assert missing == "NOT_FOUND"
    events_before = await hub.count("flag_events")
    assert (await department.data(CASE, {"id": flag_id}))["flag"]["version"] == 1

    await department.data(MOVE, {"id": flag_id, "to": "ACKNOWLEDGED", "v": 1})
    stale = await department.post(MOVE, {"id": flag_id, "to": "VERIFYING", "v": 1})
    assert stale["errors"][0]["extensions"] == {
        "code": "STALE_VERSION",
        "expectedVersion": 1,
        "currentVersion": 2,
    }
    case = (await department.data(CASE, {"id": flag_id}))["flag"]
    assert case["status"] == "ACKNOWLEDGED"
    assert case["version"] == 2
    assert await hub.count("flag_events") == events_before + 1


async def test_who_sees_which_flags(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    mine = await hub.raise_flag(await hub.community_token())
    flooding = await hub.raise_flag(
        await hub.community_token(), category="flooding"
    )  # default route
    theirs = await hub.raise_flag(
        await hub.community_token(OTHER_COMMUNITY), community=OTHER_COMMUNITY
    )
    page = "query ($s: RiskFlagStatus, $first: Int, $after: String) { flags(status: $s, first: $first, after: $after) { edges { cursor node { id assignedTo } } pageInfo { hasNextPage endCursor } } }"

    def ids(data: dict[str, Any]) -> list[str]:
        return [e["node"]["id"] for e in data["flags"]["edges"]]

    gas = await hub.graphql(await hub.department_token())
    assert ids(await gas.data(page)) == [mine]
    other_gas = await hub.graphql(await hub.department_token(DEPT_OTHER))
    assert ids(await other_gas.data(page)) == [theirs]  # area 110105, shorter prefix
    default = await hub.graphql(await hub.department_token(DEPT_DEFAULT))
    assert ids(await default.data(page)) == [flooding]
    assert (
        await default.error_code("query ($id: ID!) { flag(id: $id) { id } }", {"id": mine})
        == "NOT_FOUND"
    )
    community = await hub.graphql(await hub.community_token())
    assert ids(await community.data(page)) == [flooding, mine]
    admin = await hub.graphql(await hub.token("110105", OrgKind.HUB, "admin"))
    first = await admin.data(page, {"first": 2})
    assert ids(first) == [theirs, flooding]
    assert first["flags"]["pageInfo"]["hasNextPage"]
    rest = await admin.data(page, {"first": 2, "after": first["flags"]["pageInfo"]["endCursor"]})
    assert ids(rest) == [mine]
    assert not rest["flags"]["pageInfo"]["hasNextPage"]
    assert ids(await admin.data(page, {"s": "ACKNOWLEDGED"})) == []
    nobody = await hub.graphql(await hub.community_token(scopes="resources:read"))
    assert await nobody.error_code(page) == "FORBIDDEN"
