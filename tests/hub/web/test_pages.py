"""The hub serves the web application and relays the flags people raise on its map.

Real servers on each backend: the hub and one community node on their own databases,
OAuth tokens from the hub's token endpoint, real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from hub.settings import HubSettings
from schema.codes import RISK_CATEGORIES
from schema.enums import OrgKind
from tests.conftest import BACKENDS, GraphQLClient
from tests.e2e.test_flag_journey import oauth_token
from tests.hub.flags.conftest import eventually
from tests.node.flags.conftest import COMMUNITY, DEPT_GAS, FlagRig, flag_input, flag_rig

RAISE = """mutation ($i: RiskFlagCreateInput!) {
  raiseRiskFlag(input: $i) { id source status version } }"""
AT_NODE = """query ($id: ID!) { node(id: $id) { ... on RiskFlag {
  id status category description transitions { status by } } } }"""
TILES = "https://tiles.example.org/{z}/{x}/{y}.png"


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlagRig]:
    async with flag_rig(request.param, tmp_path) as built:
        yield built


async def test_the_hub_serves_the_application_from_the_package(rig: FlagRig) -> None:
    hub = await rig.start_hub(map_tile_url=TILES, map_tile_attribution="© 测试底图")
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as http:
        home = await http.get("/")
        assert (home.status_code, home.headers["location"]) == (307, "/app/")
        page = await http.get("/app/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="main.js">' in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "img-src 'self' data: https://tiles.example.org;" in policy
        for asset, kind in [
            ("main.js", "javascript"), ("auth.js", "javascript"), ("api.js", "javascript"),
            ("map.js", "javascript"), ("i18n.js", "javascript"), ("app.css", "text/css"),
        ]:  # fmt: skip
            answer = await http.get(f"/app/{asset}")
            assert answer.status_code == 200, asset
            assert kind in answer.headers["content-type"], asset
        config = (await http.get("/app/config.json")).json()
        assert config["tileUrl"] == TILES
        assert config["tileAttribution"] == "© 测试底图"
        assert [c["code"] for c in config["riskCategories"]] == list(RISK_CATEGORIES)
        assert (await http.get("/app/nothing-here.js")).status_code == 404
        # every script and style the page names is the hub's own (no CDN)
        assert "http" not in page.text.replace('lang="zh-CN"', "")


def test_a_tile_url_must_be_an_http_template() -> None:
    for wrong in ("ftp://tiles.example.org/{z}/{x}/{y}.png", "https://tiles.example.org/{z}/{x}"):
        with pytest.raises(ValidationError, match=r"\{z\}, \{x\} and \{y\}"):
            HubSettings(map_tile_url=wrong)
    assert HubSettings(map_tile_url="").map_tile_url is None


async def _count_at_node(rig: FlagRig) -> int:
    return len(await rig.node_sql("SELECT id FROM risk_flags"))


async def test_staff_raise_a_flag_at_the_hub_which_relays_it_to_their_node(rig: FlagRig) -> None:
    hub = await rig.start_hub()
    rig.start_node()

    async def token(org: str, kind: OrgKind, scopes: str) -> GraphQLClient:
        minted = await oauth_token(hub.url, rig, org=org, kind=kind, scopes=scopes, resource=None)
        client = GraphQLClient(hub.url, minted)
        rig.clients.append(client)
        return client

    staff = await token(COMMUNITY, OrgKind.COMMUNITY, "risk:flag incidents:read")
    department = await token(DEPT_GAS, OrgKind.DEPARTMENT, "risk:verify incidents:read")
    elsewhere = await token("110105001999", OrgKind.COMMUNITY, "risk:flag")
    reader = await token(COMMUNITY, OrgKind.COMMUNITY, "incidents:read")

    async def described() -> bool:
        body = await staff.post("{ sources { id status } }")
        return body["data"]["sources"] == [{"id": COMMUNITY, "status": "ok"}]

    await eventually(described, timeout_s=30)

    raised: dict[str, Any] = (await staff.data(RAISE, {"i": flag_input(7)}))["raiseRiskFlag"]
    assert raised["source"] == COMMUNITY
    assert raised["id"].startswith(f"RiskFlag:{COMMUNITY}:")
    assert (raised["status"], raised["version"]) == ("RAISED", 1)
    at_node = await rig.staff().data(AT_NODE, {"id": raised["id"]})
    assert at_node["node"]["description"] == flag_input(7)["description"]
    assert at_node["node"]["transitions"][0]["status"] == "RAISED"

    # it travels as any flag raised at the node: the department gets it routed
    async def routed() -> Any:
        body = await department.data("{ flags { edges { node { id status assignedTo } } } }")
        return next(
            (e["node"] for e in body["flags"]["edges"] if e["node"]["id"] == raised["id"]), None
        )

    flag = await eventually(routed, timeout_s=30)
    assert (flag["status"], flag["assignedTo"]) == ("ROUTED", DEPT_GAS)

    # refusals, each with its code, and nothing written at the node
    written = await _count_at_node(rig)

    async def refused(client: GraphQLClient, flag: dict[str, Any]) -> dict[str, Any]:
        body = await client.post(RAISE, {"i": flag})
        assert body["data"] is None, body
        extensions: dict[str, Any] = body["errors"][0]["extensions"]
        return extensions

    assert (await refused(department, flag_input(8)))["code"] == "FORBIDDEN"
    assert (await refused(reader, flag_input(8)))["code"] == "FORBIDDEN"
    assert (await refused(elsewhere, flag_input(8)))["code"] == "NOT_FOUND"
    bad_place = {**flag_input(8), "location": {"type": "Point", "coordinates": [500.0, 39.9]}}
    answer = await refused(staff, bad_place)
    assert answer["code"] == "SOURCE_ERROR"
    assert answer["source"] == COMMUNITY
    bad_category = {**flag_input(8), "category": "not_a_category"}
    assert (await refused(staff, bad_category))["code"] == "SOURCE_ERROR"
    assert await _count_at_node(rig) == written
