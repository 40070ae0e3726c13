"""Aid cases page with signed cursors, at a node and at the hub, over real servers.

Three requests from A to B: a department of A's county pages the hub's ``aidCases`` two at
a time, and A's staff page A's node's ``aidCases``; each ``endCursor`` is signed, and a
forged or garbled one (a plain request id, as cursors once were) is refused INVALID_CURSOR.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from schema.enums import OrgKind
from tests.conftest import BACKENDS, GraphQLClient
from tests.e2e.aid_rig import A, AidRig, aid_rig
from tests.e2e.test_aid_bad_input import error, request_input
from tests.e2e.test_aid_journey import CREATE_REQUEST, HUB_CASE, find_and_request, start
from tests.hub.flags.conftest import eventually

CASES = """query ($first: Int!, $after: String) { aidCases(first: $first, after: $after) {
  items { requestId } hasNextPage endCursor } }"""


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AidRig]:
    async with aid_rig(request.param, tmp_path) as built:
        yield built


async def all_pages(client: GraphQLClient) -> tuple[list[str], list[str]]:
    """Every request id, two per page, and the cursors handed out."""
    ids: list[str] = []
    cursors: list[str] = []
    after: str | None = None
    while True:
        page: dict[str, Any] = (await client.data(CASES, {"first": 2, "after": after}))["aidCases"]
        ids += [c["requestId"] for c in page["items"]]
        if not page["hasNextPage"]:
            return ids, cursors
        after = page["endCursor"]
        assert after is not None
        cursors.append(after)


async def test_aid_cases_page_with_signed_cursors(rig: AidRig) -> None:
    a_at_hub = await start(rig)
    assert rig.hub is not None
    resource_id, first_id = await find_and_request(rig, a_at_hub)
    a = rig.staff(A)
    more = [
        (await a.data(CREATE_REQUEST, {"i": request_input(resourceId=resource_id)}))[
            "createAidRequest"
        ]["id"]
        for _ in range(2)
    ]
    wanted = sorted([first_id, *more])
    department = await rig.hub.graphql(
        org="110105400003", kind=OrgKind.DEPARTMENT, scopes="risk:verify"
    )

    async def relayed() -> bool | None:
        cases = [(await department.data(HUB_CASE, {"r": r}))["aidCase"] for r in wanted]
        return all(cases) or None

    await eventually(relayed, timeout_s=30)
    for client in (a, department):
        ids, cursors = await all_pages(client)
        assert ids == wanted
        assert len(cursors) == 1
        assert all(r not in c for c in cursors for r in wanted)  # opaque, not the id
        tampered = ("B" if cursors[0][0] == "A" else "A") + cursors[0][1:]
        for forged in (wanted[1], tampered, "not a cursor!"):
            found = await error(client, CASES, {"first": 2, "after": forged})
            assert found["code"] == "INVALID_CURSOR", (client, forged, found)
