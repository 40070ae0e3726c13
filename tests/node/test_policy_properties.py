"""Over random records and callers, the node never returns a field the policy does not allow."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strawberry.utils.str_converters import to_snake_case

from policies import (
    Caller,
    Disclosure,
    Mode,
    Owner,
    PolicyEngine,
    coarse_point,
    explain,
    facts_of,
    quantity_band,
)
from policies.records import field_groups
from schema.enums import OrgKind
from schema.fields import FieldGroup
from schema.geo import GeoPoint
from tests.node.conftest import NEIGHBOUR, ORG, STAFF_TOKEN, RunningNode
from tests.node.issuer import TestIssuer

OWNER = Owner(ORG, OrgKind.COMMUNITY, "110105", frozenset({NEIGHBOUR}))
ENGINE = PolicyEngine()
SCOPES = [
    "incidents:read",
    "resources:read",
    "shelters:read",
    "volunteers:read",
    "pii:read",
    "risk:verify",
    "alerts:read",
]
SELECTIONS = {
    "Resource": "id owner name kind unit shareable status description quantity available"
    " location { coordinates } address availableBand { low high label }",
    "Shelter": "id owner name accessible status description capacity occupancy"
    " location { coordinates } address freeBedsBand { low high label }",
    "Volunteer": "id owner name phone skills team availability",
}
BANDS = {"Resource": ("availableBand", "available"), "Shelter": ("freeBedsBand", None)}

callers = st.builds(
    lambda who, scopes, purpose: (*who, frozenset(scopes), purpose),
    st.sampled_from(
        [
            (ORG, OrgKind.COMMUNITY, "110105"),
            (NEIGHBOUR, OrgKind.COMMUNITY, "110105"),
            ("110105009001", OrgKind.COMMUNITY, "110105"),
            ("110105000100", OrgKind.DEPARTMENT, "110105"),
            ("110106000100", OrgKind.DEPARTMENT, "110106"),
            ("110105000000", OrgKind.HUB, "110105"),
            ("public-web", OrgKind.PUBLIC, None),
        ]
    ),
    st.sets(st.sampled_from(SCOPES)),
    st.sampled_from(["", "evacuation"]),
)
points = st.builds(
    lambda lon, lat: {"coordinates": [lon, lat]},
    st.floats(116.2, 116.6, allow_nan=False),
    st.floats(39.8, 40.0, allow_nan=False),
)


@st.composite
def records(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    record_type = draw(st.sampled_from(sorted(SELECTIONS)))
    if record_type == "Resource":
        quantity = draw(st.integers(0, 2000))
        return record_type, {
            "kind": "portable_generator",
            "name": "发电机",
            "unit": "台",
            "quantity": quantity,
            "available": draw(st.integers(0, quantity)),
            "shareable": draw(st.booleans()),
            "status": draw(st.sampled_from(["AVAILABLE", "RESERVED", "MAINTENANCE"])),
            "location": draw(points),
            "address": "永安里东街3号院",
            "description": "柴油",
        }
    if record_type == "Shelter":
        capacity = draw(st.integers(0, 500))
        return record_type, {
            "name": "体育馆",
            "capacity": capacity,
            "occupancy": draw(st.integers(0, capacity)),
            "accessible": draw(st.booleans()),
            "status": draw(st.sampled_from(["OPEN", "FULL", "CLOSED"])),
            "location": draw(points),
            "address": "永安里小学",
            "description": "无障碍",
        }
    return record_type, {
        "name": "王秀兰",
        "phone": "13800000001",
        "skills": ["急救"],
        "team": "一队",
        "availability": draw(st.sampled_from(["AVAILABLE", "ON_DUTY"])),
    }


def _graphql(client: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = client.post(
        "/graphql", json={"query": query, "variables": variables}
    ).json()
    return body


def _check_field(
    name: str, value: Any, disclosure: Disclosure, truth: dict[str, Any], group: FieldGroup
) -> None:
    if value is None:
        return  # withholding is always allowed
    assert disclosure is not Disclosure.DENY, f"{name} shown though {group.value} is denied"
    if disclosure is Disclosure.APPROXIMATE:
        assert name == "location", f"{name} has no approximate form, yet it was shown"
        exact = GeoPoint.at(*truth["location"]["coordinates"])
        assert value["coordinates"] == list(coarse_point(exact).coordinates)
    else:
        assert value == truth[name], name


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(record=records(), who=callers)
def test_no_field_outside_what_the_policy_allows(
    node: RunningNode,
    issuer: TestIssuer,
    record: tuple[str, dict[str, Any]],
    who: tuple[str, OrgKind, str | None, frozenset[str], str],
) -> None:
    record_type, fields = record
    org, kind, district, scopes, purpose = who
    with httpx.Client(base_url=node.url, timeout=30) as http:
        staff = {"Authorization": f"Bearer {STAFF_TOKEN}"}
        http.headers.update(staff)
        created = _graphql(
            http,
            f"mutation($i: {record_type}CreateInput!) {{ create{record_type}(input: $i)"
            f" {{ {SELECTIONS[record_type]} }} }}",
            {"i": fields},
        )
        truth = {to_snake_case(k): v for k, v in created["data"][f"create{record_type}"].items()}
        token = issuer.mint(
            org=org,
            aud=ORG,
            org_kind=kind.value,
            # A token always has some scope; risk:flag reads nothing.
            scope=" ".join(sorted(scopes | {"risk:flag"})),
            district=district,
        )
        http.headers.update({"Authorization": f"Bearer {token}", "X-Linli-Purpose": purpose})
        answer = _graphql(
            http,
            f"query($id: ID!) {{ node(id: $id) {{ ... on {record_type} {{"
            f" {SELECTIONS[record_type]} }} }} }}",
            {"id": truth["id"]},
        )

    caller = Caller(org, kind, scopes | {"risk:flag"}, "client", "subject", district=district)
    facts_source = {
        **truth,
        "status": truth.get("status", "").lower() if truth.get("status") else None,
    }
    decisions = explain(
        caller,
        OWNER,
        record_type,
        Mode.NORMAL,
        engine=ENGINE,
        purpose=purpose,
        record_facts=facts_of(record_type, facts_source),
    ).decisions
    if not decisions[FieldGroup.IDENTITY].allowed:
        assert answer["data"] == {"node": None}
        assert answer["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        return
    assert "errors" not in answer, answer
    shown = answer["data"]["node"]
    assert shown["id"] == truth["id"]
    groups = field_groups(record_type)
    for gql_name, value in shown.items():
        name = to_snake_case(gql_name)
        if record_type in BANDS and gql_name == BANDS[record_type][0]:
            quantity = decisions[FieldGroup.QUANTITY_EXACT].disclosure
            if value is not None:
                assert quantity is not Disclosure.DENY, "band shown though quantities are denied"
                exact = (
                    truth["available"]
                    if record_type == "Resource"
                    else truth["capacity"] - truth["occupancy"]
                )
                assert value == quantity_band(exact).model_dump()
            continue
        group = groups[name]
        _check_field(name, value, decisions[group].disclosure, truth, group)
