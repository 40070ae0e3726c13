"""The purpose through the hub: checked against its list, forwarded, refused by a node that lacks it.

A and the hub keep the default purposes; B lists only its own. A listed purpose
unlocks personal data at A; B, which does not know it, answers ``denied`` for
that request without failing the query or opening its circuit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from node.settings import NodeSettings
from schema.codes import DEFAULT_PURPOSES
from schema.enums import OrgKind
from tests.conftest import (
    BACKENDS,
    GraphQLClient,
    ServerThread,
    _empty_database,
    free_port,
    migrate,
)
from tests.hub.federation.conftest import DISTRICT, RunningHub, hub_over
from tests.hub.federation.test_nodes_e2e import wait_sources_ok

A, B = "110105001001", "110105001002"
B_PURPOSES = {"flood-pumping": "排涝 Flood pumping"}
OFFICE = "110105400001"
VOLUNTEERS = "{ volunteers(first: 10) { edges { node { owner name phone } } } }"


@dataclass
class Pair:
    hub: RunningHub
    office: GraphQLClient  # volunteers:read pii:read, at the hub


@pytest.fixture(params=BACKENDS)
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    backend: str = request.param
    async with _empty_database(backend, tmp_path / "hub") as hub_db, \
            _empty_database(backend, tmp_path / A) as a_db, \
            _empty_database(backend, tmp_path / B) as b_db:  # fmt: skip
        await migrate(HUB_MIGRATIONS, hub_db.url)
        for database in (a_db, b_db):
            await migrate(NODE_MIGRATIONS, database.url)
        ports = {A: free_port(), B: free_port()}
        hub = await hub_over(
            hub_db.url,
            tmp_path,
            {code: f"http://127.0.0.1:{port}" for code, port in ports.items()},
            breaker_threshold=2,
        )
        nodes = []
        for code, database, purposes in ((A, a_db, None), (B, b_db, B_PURPOSES)):
            settings = NodeSettings(
                database_url=database.url, org_code=code, district=DISTRICT,
                token_issuer=hub.settings.issuer, jwks_url=f"{hub.url}/.well-known/jwks.json",
                **({"purposes": purposes} if purposes else {}),
            )  # fmt: skip
            nodes.append(ServerThread(create_node(settings), ports[code]).start())
        try:
            for code in (A, B):
                staff = GraphQLClient(
                    f"http://127.0.0.1:{ports[code]}",
                    await hub.client_token(
                        org=code, kind=OrgKind.COMMUNITY, scopes="records:write", resource=code
                    ),
                )
                hub.clients.append(staff)
                await staff.data(
                    f"""mutation {{ createVolunteer(input: {{name: "志愿者{code[-1]}",
                    phone: "1380000000{code[-1]}", skills: ["急救"]}}) {{ id }} }}"""
                )
            office = await hub.graphql(
                org=OFFICE,
                kind=OrgKind.DEPARTMENT,
                scopes="volunteers:read pii:read emergency:declare admin",
            )
            await wait_sources_ok(office, 2)
            declared = await office.data(
                """mutation($e: DateTime!) { declareEmergency(area: ["110105001"], level: II,
                reason: "暴雨红色预警", expiresAt: $e) { source active } }""",
                {"e": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
            )
            assert all(answer["active"] for answer in declared["declareEmergency"])
            yield Pair(hub, office)
        finally:
            for server in nodes:
                await asyncio.to_thread(server.stop)
            await hub.stop()


async def _read(pair: Pair, purpose: str | None) -> tuple[int, dict[str, Any]]:
    headers = {} if purpose is None else {"X-Linli-Purpose": purpose}
    response = await pair.office.http.post("/graphql", json={"query": VOLUNTEERS}, headers=headers)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def _names(body: dict[str, Any]) -> dict[str, str | None]:
    return {e["node"]["owner"]: e["node"]["name"] for e in body["data"]["volunteers"]["edges"]}


def _statuses(body: dict[str, Any]) -> dict[str, str]:
    return {report["source"]: report["status"] for report in body["extensions"]["sources"]}


async def test_a_purpose_the_hub_lists_is_forwarded_and_a_node_without_it_is_denied(
    pair: Pair,
) -> None:
    assert "rescue" in DEFAULT_PURPOSES
    assert "rescue" not in B_PURPOSES
    status, body = await _read(pair, None)
    assert status == 200
    assert _names(body) == {A: None, B: None}  # no purpose: no personal data anywhere

    # More refusals in a row than the breaker's threshold (2): B's circuit must stay closed.
    for _ in range(3):
        status, body = await _read(pair, "rescue")
        assert status == 200
        assert _names(body) == {A: "志愿者1"}  # unlocked at A, where "rescue" is listed
        assert _statuses(body) == {A: "ok", B: "denied"}
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "SOURCE_DENIED"
        assert error["extensions"]["source"] == B
        assert "PURPOSE_UNKNOWN" in error["message"]

    status, body = await _read(pair, None)
    assert _statuses(body) == {A: "ok", B: "ok"}
    circuits = await pair.office.data("{ sources { id circuit } }")
    assert {s["id"]: s["circuit"] for s in circuits["sources"]} == {A: "closed", B: "closed"}


@pytest.mark.parametrize("stated", [".", "flood-pumping", "anything at all"])
async def test_the_hub_refuses_a_purpose_it_does_not_list_before_any_fan_out(
    pair: Pair, stated: str
) -> None:
    # "flood-pumping" is B's, not the hub's: the hub's list decides what it forwards.
    status, body = await _read(pair, stated)
    assert status == 400
    assert "data" not in body
    (error,) = body["errors"]
    assert error["extensions"] == {
        "code": "PURPOSE_UNKNOWN",
        "field": "X-Linli-Purpose",
        "allowed": sorted(DEFAULT_PURPOSES),
    }
