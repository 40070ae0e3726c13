"""``POST /flags/updates``: only the district hub, once per message id, never backwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hub.auth import create_auth
from hub.flags.outbox import AID_STEPS_PATH, FLAG_UPDATES_PATH, hub_caller, route_caller
from policies.caller import Caller
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.node.flags.conftest import COMMUNITY, DEPT_GAS, DISTRICT, FlagRig

FLAG = """query ($id: ID!) { node(id: $id) { ... on RiskFlag {
  status version assignedTo transitions { status by note } timeline { hop at } } } }"""


class Hub:
    """Tokens as the running hub signs them: its own keys, loaded from its database."""

    def __init__(self, rig: FlagRig) -> None:
        assert rig.hub is not None
        self.rig = rig
        self.settings = rig.hub.settings
        self.db = Database(rig.hub_db_url)
        self.auth = create_auth(self.settings, self.db)

    async def token(self, caller: Caller | None = None, audience: str = COMMUNITY) -> str:
        """What the hub's outbox presents: minted for the node, naming the district hub."""
        await self.auth.keys.load()
        who = caller or hub_caller(hub_id=self.settings.hub_id, district=DISTRICT)
        return await self.auth.issuer.mint_for_source(who, audience)

    async def close(self) -> None:
        await self.auth.jwks_http.aclose()
        await self.db.dispose()


@pytest.fixture
async def hub(rig: FlagRig) -> AsyncIterator[Hub]:
    await rig.start_hub(delivery_poll_s=3600.0)  # the hub's own outbox stays out of the way
    rig.start_node(deliver=False)
    tokens = Hub(rig)
    yield tokens
    await tokens.close()


def update(
    flag_id: str, statuses: list[str], *, message_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    start = datetime.now(UTC)
    steps = [
        {"status": s, "at": (start + timedelta(seconds=i)).isoformat(), "by": "x", "note": ""}
        for i, s in enumerate(statuses)
    ]
    hops = {"raised_at_node": steps[0]["at"], "received_at_hub": steps[0]["at"]}
    hops.update({s: step["at"] for s, step in zip(statuses[1:], steps[1:], strict=True)})
    return {
        "message_id": message_id or str(uuid.uuid4()),
        "flag_id": flag_id,
        "status": statuses[-1],
        "transitions": steps,
        "assigned_to": DEPT_GAS,
        "timeline": hops,
        **extra,
    }


async def post(
    rig: FlagRig, token: str | None, body: Any, path: str = FLAG_UPDATES_PATH
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30.0) as http:
        return await http.post(f"{rig.node_url}{path}", json=body, headers=headers)


def code(response: httpx.Response) -> tuple[int, str, str | None]:
    extensions = response.json()["errors"][0]["extensions"]
    return response.status_code, extensions["code"], extensions.get("reason")


async def flag_state(rig: FlagRig, flag_id: str) -> dict[str, Any]:
    data = await rig.staff().data(FLAG, {"id": flag_id})
    node: dict[str, Any] = data["node"]
    return node


async def test_only_the_district_hub_may_send_updates(rig: FlagRig, hub: Hub) -> None:
    [flag_id] = await rig.raise_flags(1)
    body = update(flag_id, ["raised", "routed"])
    assert rig.hub is not None

    assert code(await post(rig, None, body)) == (401, "UNAUTHENTICATED", "TOKEN_MISSING")
    wrong_audience = await hub.token(audience="110105001999")
    assert code(await post(rig, wrong_audience, body)) == (
        401,
        "UNAUTHENTICATED",
        "TOKEN_AUDIENCE_INVALID",
    )
    community = await rig.hub.client_token(
        org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes="risk:verify", resource=COMMUNITY
    )
    assert code(await post(rig, community, body)) == (403, "FORBIDDEN", "NOT_HUB")
    department = await rig.hub.client_token(
        org=DEPT_GAS, kind=OrgKind.DEPARTMENT, scopes="risk:verify", resource=COMMUNITY
    )
    assert code(await post(rig, department, body)) == (403, "FORBIDDEN", "NOT_HUB")
    other_district = Caller(
        org="110106", org_kind=OrgKind.HUB, scopes=frozenset({"risk:verify"}),
        client_id="hub-110106", subject="hub-110106", district="110106",
    )  # fmt: skip
    assert code(await post(rig, await hub.token(other_district), body)) == (
        403,
        "FORBIDDEN",
        "OTHER_DISTRICT",
    )
    no_scope = Caller(
        org=DISTRICT, org_kind=OrgKind.HUB, scopes=frozenset({"incidents:read"}),
        client_id="hub-110105", subject="hub-110105", district=DISTRICT,
    )  # fmt: skip
    assert code(await post(rig, await hub.token(no_scope), body)) == (
        403,
        "FORBIDDEN",
        "SCOPE_MISSING",
    )
    state = await flag_state(rig, flag_id)
    assert (state["status"], state["version"]) == ("RAISED", 1)
    assert (await rig.node_sql("SELECT count(*) FROM flag_updates"))[0][0] == 0

    accepted = await post(rig, await hub.token(), body)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"status": "applied", "flag_id": flag_id, "version": 2}


async def test_each_route_takes_only_the_hub_token_for_its_own_scope(
    rig: FlagRig, hub: Hub
) -> None:
    [flag_id] = await rig.raise_flags(1)
    body = update(flag_id, ["raised", "routed"])
    district_hub = hub_caller(hub_id=hub.settings.hub_id, district=DISTRICT)
    flag_token = await hub.token(route_caller(district_hub, FLAG_UPDATES_PATH))
    aid_token = await hub.token(route_caller(district_hub, AID_STEPS_PATH))

    # The outbox's token for one route is refused on the other (the node checks per endpoint).
    assert code(await post(rig, flag_token, {}, AID_STEPS_PATH)) == (
        403,
        "FORBIDDEN",
        "SCOPE_MISSING",
    )
    assert code(await post(rig, aid_token, body)) == (403, "FORBIDDEN", "SCOPE_MISSING")
    state = await flag_state(rig, flag_id)
    assert (state["status"], state["version"]) == ("RAISED", 1)

    # Each is taken on its own route (an empty aid step passes the check, then fails to parse).
    invalid = await post(rig, aid_token, {}, AID_STEPS_PATH)
    assert invalid.status_code == 400, invalid.text
    accepted = await post(rig, flag_token, body)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"status": "applied", "flag_id": flag_id, "version": 2}


async def test_an_update_is_applied_once_per_message_id(rig: FlagRig, hub: Hub) -> None:
    [flag_id] = await rig.raise_flags(1)
    token = await hub.token()
    body = update(flag_id, ["raised", "routed"])
    first = await post(rig, token, body)
    assert first.json() == {"status": "applied", "flag_id": flag_id, "version": 2}
    again = await post(rig, token, body)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "flag_id": flag_id}
    state = await flag_state(rig, flag_id)
    assert state["status"] == "ROUTED"
    assert state["version"] == 2
    assert state["assignedTo"] == DEPT_GAS
    assert [t["status"] for t in state["transitions"]] == ["RAISED", "ROUTED"]
    assert [h["hop"] for h in state["timeline"]] == ["raised_at_node", "received_at_hub", "routed"]
    assert (await rig.node_sql("SELECT count(*) FROM flag_updates"))[0][0] == 1


async def test_an_older_update_changes_nothing(rig: FlagRig, hub: Hub) -> None:
    [flag_id] = await rig.raise_flags(1)
    token = await hub.token()
    newer = update(flag_id, ["raised", "routed", "acknowledged"])
    older = update(flag_id, ["raised", "routed"])  # sent first, arrived last
    assert (await post(rig, token, newer)).json()["status"] == "applied"
    late = await post(rig, token, older)
    assert late.status_code == 200
    assert late.json() == {"status": "ignored", "flag_id": flag_id, "version": 2}
    state = await flag_state(rig, flag_id)
    assert (state["status"], state["version"]) == ("ACKNOWLEDGED", 2)
    assert [t["status"] for t in state["transitions"]] == ["RAISED", "ROUTED", "ACKNOWLEDGED"]
    listed = await rig.staff().data(
        "{ riskFlags(where: {statuses: [ACKNOWLEDGED]}) { edges { node { id } } } }"
    )
    assert [e["node"]["id"] for e in listed["riskFlags"]["edges"]] == [flag_id]


async def test_unknown_flags_and_bad_bodies_are_refused(rig: FlagRig, hub: Hub) -> None:
    [flag_id] = await rig.raise_flags(1)
    token = await hub.token()
    unknown = await post(rig, token, update(f"RiskFlag:{COMMUNITY}:nosuchflag", ["raised", "x"]))
    assert unknown.status_code == 400  # "x" is no status: the body is checked first
    for missing in (f"RiskFlag:{COMMUNITY}:nosuchflag", "RiskFlag:110105001002:abc"):
        response = await post(rig, token, update(missing, ["raised", "routed"]))
        assert code(response) == (404, "NOT_FOUND", None)
    response = await post(rig, token, update("not-a-global-id", ["raised", "routed"]))
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_ID"
    body = update(flag_id, ["raised", "routed"])
    del body["transitions"]
    response = await post(rig, token, body)
    assert response.status_code == 400
    extensions = response.json()["errors"][0]["extensions"]
    assert (extensions["code"], extensions["field"]) == ("MISSING_FIELD", "transitions")
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.post(
            f"{rig.node_url}/flags/updates",
            content=b"{not json",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert code(response)[:2] == (400, "INVALID_JSON")
    assert (await rig.node_sql("SELECT count(*) FROM flag_updates"))[0][0] == 0
    assert (await flag_state(rig, flag_id))["version"] == 1
