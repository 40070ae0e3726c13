"""Aid requests are served by every node like any record type: created by staff, read by parties."""

from __future__ import annotations

from tests.conftest import GraphQLClient
from tests.node.conftest import NEIGHBOUR, ORG, RunningNode
from tests.node.issuer import TestIssuer

STRANGER = "110105001009"
REQUEST = {
    "requester": ORG,
    "provider": NEIGHBOUR,
    "resourceKind": "drinking_water",
    "quantity": 40,
    "unit": "箱",
    "purpose": "6号楼停水，独居老人饮水",
}
CREATE = """mutation($input: AidRequestCreateInput!) {
  createAidRequest(input: $input) { id owner status requester provider quantity purpose } }"""
LIST = """query($where: AidRequestFilter) {
  aidRequests(where: $where) { edges { node { id status quantity purpose } } } }"""


def client(node: RunningNode, issuer: TestIssuer, org: str, scope: str) -> GraphQLClient:
    token = issuer.mint(org=org, aud=node.settings.source_id, scope=scope)
    return GraphQLClient(node.url, token)


async def test_staff_with_aid_request_create_and_the_parties_read_it(
    node: RunningNode, issuer: TestIssuer
) -> None:
    staff = client(node, issuer, ORG, "aid:request")
    provider = client(node, issuer, NEIGHBOUR, "aid:respond")
    stranger = client(node, issuer, STRANGER, "aid:respond")
    unscoped = client(node, issuer, NEIGHBOUR, "resources:read")
    try:
        created = (await staff.data(CREATE, {"input": REQUEST}))["createAidRequest"]
        assert created["id"].startswith(f"AidRequest:{ORG}:")
        assert created["status"] == "REQUESTED"  # the source sets the state, not the author
        assert created["purpose"] == REQUEST["purpose"]

        where = {"statuses": ["REQUESTED"], "resourceKinds": ["drinking_water"]}
        seen = (await provider.data(LIST, {"where": where}))["aidRequests"]["edges"]
        assert [e["node"]["id"] for e in seen] == [created["id"]]
        assert seen[0]["node"]["quantity"] == 40

        # Not a party: the request does not exist for it.
        assert (await stranger.data(LIST))["aidRequests"]["edges"] == []
        # No scope: that field is null with its error; the fields it may read still answer.
        body = await unscoped.post(
            "{ aidRequests { edges { node { id } } } resources { edges { node { id } } } }"
        )
        assert body["data"] == {"aidRequests": None, "resources": {"edges": []}}
        [error] = body["errors"]
        assert (error["path"], error["extensions"]) == (
            ["aidRequests"], {"code": "FORBIDDEN", "scope": ["aid:request", "aid:respond"]}
        )  # fmt: skip
        other_kind = {"resourceKinds": ["portable_generator"]}
        assert (await provider.data(LIST, {"where": other_kind}))["aidRequests"]["edges"] == []
    finally:
        for c in (staff, provider, stranger, unscoped):
            await c.aclose()


async def test_an_aid_request_without_the_scope_is_refused_and_not_written(
    node: RunningNode, issuer: TestIssuer
) -> None:
    reader = client(node, issuer, ORG, "aid:respond")
    staff = client(node, issuer, ORG, "aid:request")
    try:
        before = len((await staff.data(LIST))["aidRequests"]["edges"])
        assert await reader.error_code(CREATE, {"input": REQUEST}) == "FORBIDDEN"
        negative = {**REQUEST, "quantity": -1}
        assert await staff.error_code(CREATE, {"input": negative}) == "OUT_OF_RANGE"
        assert len((await staff.data(LIST))["aidRequests"]["edges"]) == before
    finally:
        await reader.aclose()
        await staff.aclose()
