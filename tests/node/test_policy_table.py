"""What the node returns over HTTP, cell by cell: caller × record × field group × mode.

Records of every type are created by the node's own staff (alerts, which have
no mutation, are stored directly); each caller then lists them over HTTP with
a real access token, in normal mode and again after a real
``declareEmergency``. Every cell is compared with the explicit table below:
one string per record over the field groups ``I S D Q L C P``:

    E  every field of the group present, with its exact value
    A  approximated (a band instead of exact figures, a ~500 m location,
       fields without an approximate form null)
    -  every field of the group null
    .  the record type has no such fields
    X  (the whole string) the record is absent from the answer
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from node.app import MIGRATIONS, create_app
from node.settings import NodeSettings
from node.tables import TABLES
from policies import coarse_point, quantity_band
from schema.geo import GeoPoint
from schema.records import AlertCreate
from schema.runtime.db import Database
from schema.store import service
from schema.store.specs import bind_specs
from tests.conftest import DatabaseUnderTest, GraphQLClient, ServerThread, migrate
from tests.node.issuer import ALL_READ_SCOPES, DISTRICT, READ_SCOPES, TestIssuer

ORG = "110105001001"
NEIGHBOUR_ORG = "110105001002"
STRANGER_ORG = "110105009001"
DEPARTMENT_ORG = "110105000100"
PURPOSE = "evacuation"
GROUPS = "ISDQLCP"

# The GraphQL fields of each group, per record type (bands go with Q).
FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "Incident": {
        "I": ("title", "category"),
        "S": ("status",),
        "D": ("description",),
        "Q": ("affectedPeople",),
        "L": ("location", "address"),
    },
    "Resource": {
        "I": ("name", "kind", "unit"),
        "S": ("status",),
        "D": ("description",),
        "Q": ("quantity", "available"),
        "L": ("location", "address"),
    },
    "Shelter": {
        "I": ("name", "accessible"),
        "S": ("status",),
        "D": ("description",),
        "Q": ("capacity", "occupancy"),
        "L": ("location", "address"),
    },
    "Volunteer": {"I": ("skills", "team"), "S": ("availability",), "P": ("name", "phone")},
    "RiskFlag": {
        "I": ("category",),
        "S": ("status",),
        "D": ("description",),
        "L": ("location", "address"),
    },
    "Alert": {
        "I": ("identifier", "sender"),
        "S": ("msgType",),
        "D": ("note",),
        "C": ("addresses",),
    },
}
BANDS = {"Resource": "availableBand", "Shelter": "freeBedsBand"}
LIST_FIELDS = {
    "Incident": "incidents",
    "Resource": "resources",
    "Shelter": "shelters",
    "Volunteer": "volunteers",
    "RiskFlag": "riskFlags",
    "Alert": "alerts",
}

# --- the expected table --------------------------------------------------

ABSENT = "X"


def both(cell: str) -> tuple[str, str]:
    return (cell, cell)


#                                 ISDQLCP
SELF = {
    "Incident": both("EEEEE.."),
    "Resource/shareable": both("EEEEE.."),
    "Resource/private": both("EEEEE.."),
    "Shelter/open": both("EEEEE.."),
    "Shelter/closed": both("EEEEE.."),
    "Volunteer": both("EE....E"),
    "RiskFlag": both("EEE.E.."),
    "Alert/Public": both("EEE..E."),
    "Alert/Restricted": both("EEE..E."),
    "Alert/Private": both("EEE..E."),
}
# Anyone: open shelters (identity, status, ~500 m) and the public parts of public alerts.
PUBLIC = {
    "Incident": both(ABSENT),
    "Resource/shareable": both(ABSENT),
    "Resource/private": both(ABSENT),
    "Shelter/open": both("EE--A.."),
    "Shelter/closed": both(ABSENT),
    "Volunteer": both(ABSENT),
    "RiskFlag": both(ABSENT),
    "Alert/Public": both("EEE..-."),
    "Alert/Restricted": both(ABSENT),
    "Alert/Private": both(ABSENT),
}
NEIGHBOUR = {
    **PUBLIC,
    #                        normal     emergency
    "Resource/shareable": ("EEEAA..", "EEEEA.."),
    "Shelter/open": both("EEEAA.."),
    "Volunteer": both("EE....-"),
}
DEPARTMENT = {
    **SELF,
    "Volunteer": ("EE....-", "EE....E"),  # personal data: pii:read, emergency, purpose
    "Alert/Private": both(ABSENT),
}
DEPARTMENT_NO_PII = {**DEPARTMENT, "Volunteer": both("EE....-")}

EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "self": SELF,
    "neighbour": NEIGHBOUR,
    "non-neighbour-community": PUBLIC,
    "department": DEPARTMENT,
    "department-without-pii": DEPARTMENT_NO_PII,
    "public": PUBLIC,
}

# (org, org_kind, scope, district) of each caller's token
CALLERS: dict[str, tuple[str, str, str, str | None]] = {
    "self": (ORG, "community", ALL_READ_SCOPES, DISTRICT),
    "neighbour": (NEIGHBOUR_ORG, "community", ALL_READ_SCOPES, DISTRICT),
    "non-neighbour-community": (STRANGER_ORG, "community", ALL_READ_SCOPES, DISTRICT),
    "department": (DEPARTMENT_ORG, "department", ALL_READ_SCOPES, DISTRICT),
    "department-without-pii": ("110105000101", "department", READ_SCOPES, DISTRICT),
    "public": ("public-web", "public", ALL_READ_SCOPES, None),
}

# --- the records -----------------------------------------------------------

POINT = [116.4446, 39.9087]
CREATE = {
    "Incident": (
        "createIncident",
        """{title: "地下车库积水", category: NATURAL_DISASTER, severityLevel: IV,
        affectedPeople: 12, description: "车库进水约30厘米", address: "永安里东街3号院",
        location: {coordinates: [116.4446, 39.9087]}}""",
    ),
    "Resource/shareable": (
        "createResource",
        """{kind: "portable_generator", name: "5千瓦发电机", quantity: 5, available: 3, unit: "台",
        description: "柴油", address: "永安里东街3号院", shareable: true,
        location: {coordinates: [116.4446, 39.9087]}}""",
    ),
    "Resource/private": (
        "createResource",
        """{kind: "water_pump", name: "备用水泵", quantity: 2, available: 2, unit: "台",
        description: "社区自用", address: "永安里东街5号", shareable: false,
        location: {coordinates: [116.4446, 39.9087]}}""",
    ),
    "Shelter/open": (
        "createShelter",
        """{name: "永安里小学体育馆", capacity: 300, occupancy: 40, accessible: true,
        description: "有无障碍通道", address: "永安里小学", status: OPEN,
        location: {coordinates: [116.4446, 39.9087]}}""",
    ),
    "Shelter/closed": (
        "createShelter",
        """{name: "社区活动中心", capacity: 80, occupancy: 0, accessible: false,
        description: "维修中", address: "永安里活动中心", status: CLOSED,
        location: {coordinates: [116.4446, 39.9087]}}""",
    ),
    "Volunteer": (
        "createVolunteer",
        """{name: "王秀兰", phone: "13800000001", skills: ["急救", "first aid"], team: "一队"}""",
    ),
    "RiskFlag": (
        "raiseRiskFlag",
        """{category: "slope_instability", description: "边坡裂缝", address: "东坡",
        location: {coordinates: [116.4446, 39.9087]}}""",
    ),
}


def _selection(record_type: str) -> str:
    names = [name for fields in FIELDS[record_type].values() for name in fields]
    parts = ["id"]
    for name in names:
        parts.append(f"{name} {{ coordinates }}" if name == "location" else name)
    if record_type in BANDS:
        parts.append(f"{BANDS[record_type]} {{ label }}")
    return " ".join(parts)


def _alert(scope: str) -> AlertCreate:
    return AlertCreate.model_validate(
        {
            "identifier": f"table-{scope}",
            "sender": "weather@bj.example",
            "sent": datetime(2026, 7, 1, 8, tzinfo=UTC),
            "status": "Actual",
            "msg_type": "Alert",
            "scope": scope,
            "addresses": "110105001001 110105000100",
            "restriction": "staff only" if scope == "Restricted" else None,
            "note": "暴雨橙色预警",
        }
    )


@dataclass
class World:
    truth: dict[str, dict[str, Any]]  # variant -> the record as its owner sees it
    seen: dict[tuple[str, str, str], str]  # (caller, variant, mode) -> observed cell
    policy: dict[tuple[str, str], dict[str, Any]]  # (caller, mode) -> extensions.policy


def _cell(record_type: str, truth: dict[str, Any], shown: dict[str, Any] | None) -> str:
    if shown is None:
        return ABSENT
    groups = FIELDS[record_type]
    letters = []
    for group in GROUPS:
        names = groups.get(group)
        if names is None:
            letters.append(".")
            continue
        values = [shown[n] for n in names]
        exact = [truth[n] for n in names]
        assert all(v is not None for v in exact), f"seed every field of {record_type}/{group}"
        if values == exact:
            letter = "E"
        elif all(v is None for v in values):
            letter = "-"
        else:
            letter = _approximated(record_type, group, truth, shown)
        if group == "Q" and record_type in BANDS:
            # Exact figures come with their band; approximated ones are only the band.
            band = shown[BANDS[record_type]]
            if letter == "E" and band is None:
                letter = "?"
            elif letter == "-" and band is not None:
                letter = "A" if band["label"] == _band_label(truth) else "?"
        letters.append(letter)
    return "".join(letters)


def _approximated(
    record_type: str, group: str, truth: dict[str, Any], shown: dict[str, Any]
) -> str:
    if group == "L":
        exact = GeoPoint.at(*truth["location"]["coordinates"])
        coarse = coarse_point(exact)
        ok = shown["address"] is None and shown["location"]["coordinates"] == list(
            coarse.coordinates
        )
        return "A" if ok else "?"
    return "?"  # anything else is neither exact, nor hidden, nor a known approximation


def _band_label(truth: dict[str, Any]) -> str:
    if "available" in truth:
        return quantity_band(truth["available"]).label
    return quantity_band(truth["capacity"] - truth["occupancy"]).label


async def _store_alerts(url: str) -> list[str]:
    spec = bind_specs(TABLES)["Alert"]
    db = Database(url)
    ids = []
    try:
        async with db.transaction() as session:
            for scope in ("Public", "Restricted", "Private"):
                row = await service.create_record(session, spec, _alert(scope))
                ids.append(f"Alert:{ORG}:{row.id}")
    finally:
        await db.dispose()
    return ids


async def _observe(
    clients: dict[str, GraphQLClient],
    truth: dict[str, dict[str, Any]],
    mode: str,
    world: World,
) -> None:
    for caller, client in clients.items():
        query = (
            "{ "
            + " ".join(
                f"{field}(first: 500) {{ edges {{ node {{ {_selection(t)} }} }} }}"
                for t, field in LIST_FIELDS.items()
            )
            + " }"
        )
        body = await client.post(query)
        assert "errors" not in body, body
        world.policy[(caller, mode)] = body.get("extensions", {}).get("policy", {})
        by_id = {
            edge["node"]["id"]: edge["node"]
            for field in LIST_FIELDS.values()
            for edge in body["data"][field]["edges"]
        }
        for variant, record in truth.items():
            record_type = variant.split("/")[0]
            world.seen[(caller, variant, mode)] = _cell(
                record_type, record, by_id.get(record["id"])
            )


@pytest.fixture(scope="module")
async def world(database: DatabaseUnderTest, issuer: TestIssuer) -> AsyncIterator[World]:
    await migrate(MIGRATIONS, database.url)
    settings = NodeSettings(
        database_url=database.url,
        org_code=ORG,
        org_name="永安里社区",
        district=DISTRICT,
        neighbours=[NEIGHBOUR_ORG, "110105001003"],
        token_issuer=issuer.issuer,
        jwks_url=issuer.jwks_url,
    )
    server = ServerThread(create_app(settings)).start()
    staff = GraphQLClient(
        server.url, issuer.mint(org=ORG, aud=ORG, scope=f"records:write {ALL_READ_SCOPES}")
    )
    clients = {
        name: GraphQLClient(
            server.url,
            issuer.mint(org=org, aud=ORG, org_kind=kind, scope=scope, district=district),
        )
        for name, (org, kind, scope, district) in CALLERS.items()
    }
    for client in clients.values():
        client.http.headers["X-Linli-Purpose"] = PURPOSE
    try:
        truth: dict[str, dict[str, Any]] = {}
        for variant, (mutation, fields) in CREATE.items():
            record_type = variant.split("/")[0]
            data = await staff.data(
                f"mutation {{ {mutation}(input: {fields}) {{ {_selection(record_type)} }} }}"
            )
            truth[variant] = data[mutation]
        for scope, global_id in zip(
            ("Public", "Restricted", "Private"), await _store_alerts(database.url), strict=True
        ):
            own = await clients["self"].data(
                "query($id: ID!) { node(id: $id) { ... on Alert { "
                + _selection("Alert")
                + " } } }",
                {"id": global_id},
            )
            assert own["node"]["identifier"] == f"table-{scope}"  # stored as written
            truth[f"Alert/{scope}"] = own["node"]
        world = World(truth, {}, {})
        await _observe(clients, truth, "normal", world)

        department = GraphQLClient(
            server.url,
            issuer.mint(
                org=DEPARTMENT_ORG, aud=ORG, org_kind="department", scope="emergency:declare"
            ),
        )
        expires = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
        declared = await department.data(
            """mutation($at: DateTime!) { declareEmergency(level: II, reason: "特大暴雨",
            expiresAt: $at) { id active level } }""",
            {"at": expires},
        )
        assert declared["declareEmergency"]["active"] is True
        await _observe(clients, truth, "emergency", world)
        ended = await department.data(
            "mutation($id: ID!) { endEmergency(id: $id) { active endedAt } }",
            {"id": declared["declareEmergency"]["id"]},
        )
        assert ended["endEmergency"]["active"] is False
        await _observe(clients, truth, "after-emergency", world)
        await department.aclose()
        yield world
    finally:
        for client in [staff, *clients.values()]:
            await client.aclose()
        server.stop()


def test_the_table_covers_every_caller_record_type_and_group() -> None:
    assert set(EXPECTED) == set(CALLERS)
    for row in EXPECTED.values():
        assert set(row) == set(CREATE) | {"Alert/Public", "Alert/Restricted", "Alert/Private"}
    assert {variant.split("/")[0] for variant in SELF} == set(FIELDS)
    # Every group of every type appears somewhere in the table as shown and as not shown.
    for record_type, groups in FIELDS.items():
        for group in groups:
            i = GROUPS.index(group)
            letters = {
                cell[i]
                for row in EXPECTED.values()
                for variant, cells in row.items()
                if variant.split("/")[0] == record_type
                for cell in cells
                if cell != ABSENT
            }
            assert "E" in letters, (record_type, group)


CELLS = [
    pytest.param(caller, variant, mode, id=f"{caller}-{variant}-{mode}")
    for caller, row in EXPECTED.items()
    for variant in row
    for mode in ("normal", "emergency")
]


@pytest.mark.parametrize(("caller", "variant", "mode"), CELLS)
def test_cell(world: World, caller: str, variant: str, mode: str) -> None:
    normal, emergency = EXPECTED[caller][variant]
    expected = emergency if mode == "emergency" else normal
    assert world.seen[(caller, variant, mode)] == expected


def test_ending_the_emergency_restores_normal_mode(world: World) -> None:
    for (caller, variant, mode), cell in world.seen.items():
        if mode == "after-emergency":
            assert cell == EXPECTED[caller][variant][0], (caller, variant)


def test_extensions_name_the_deciding_policy_per_type_and_field(world: World) -> None:
    neighbour = world.policy[("neighbour", "normal")]
    assert neighbour["Resource"]["quantity"] == (
        "approximated by policy neighbour.shareable-resources.approximate"
    )
    assert neighbour["Resource"]["location"] == (
        "approximated by policy neighbour.shareable-resources.approximate"
    )
    assert neighbour["Resource"]["address"].startswith("hidden: policy neighbour.shareable")
    assert "name" not in neighbour["Resource"]  # shown exactly: no reason needed
    assert neighbour["Volunteer"]["phone"] == "hidden by policy guard.personal-data"
    emergency = world.policy[("neighbour", "emergency")]
    assert "quantity" not in emergency["Resource"]
    assert world.policy[("self", "normal")]["Resource"] == {}
    # Types the caller saw nothing of say nothing about their fields.
    assert world.policy[("public", "normal")]["Incident"] == {}
