"""Every status change reaches the community node once, in order, through failures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import sqlalchemy as sa

from policies.tokens import JwksCache, TokenVerifier
from schema.enums import OrgKind
from schema.runtime.db import Database
from schema.runtime.settings import Environment
from tests.hub.flags.conftest import COMMUNITY, DEPT_GAS, FlagsHub, Receiver, eventually

StartHub = Callable[..., Awaitable[FlagsHub]]
MOVE = "mutation ($id: ID!, $to: RiskFlagStatus!, $v: Int!) { transitionFlag(id: $id, to: $to, expectedVersion: $v) { version } }"


async def test_node_that_fails_twice_gets_every_update_once_in_order(
    start_flags_hub: StartHub, receivers: Any
) -> None:
    node = Receiver(script=["http503", "http503"])
    hub = await start_flags_hub({COMMUNITY: receivers(node)})
    flag_id = await hub.raise_flag(await hub.community_token())
    department = await hub.graphql(await hub.department_token())
    for version, to in enumerate(["ACKNOWLEDGED", "VERIFYING", "CONFIRMED", "RESOLVED"], start=1):
        await department.data(MOVE, {"id": flag_id, "to": to, "v": version})

    async def all_arrived() -> bool:
        return len(node.received) >= 5

    await eventually(all_arrived, timeout_s=15)
    updates = [entry.json() for entry in node.received]
    assert [u["status"] for u in updates] == [
        "routed",
        "acknowledged",
        "verifying",
        "confirmed",
        "resolved",
    ]
    assert len({u["message_id"] for u in updates}) == 5
    assert all(u["flag_id"] == flag_id for u in updates)
    assert [r.json()["message_id"] for r in node.refused] == [updates[0]["message_id"]] * 2
    last = updates[-1]
    assert last["assigned_to"] == DEPT_GAS
    assert [t["status"] for t in last["transitions"]] == [
        "raised",
        "routed",
        "acknowledged",
        "verifying",
        "confirmed",
        "resolved",
    ]
    # The node's FlagTransition, with the step's person; not the hub's org or client.
    assert set(last["transitions"][0]) == {"status", "at", "by", "note", "person"}
    assert {"raised_at_node", "received_at_hub", "routed", "acknowledged", "resolved"} <= set(
        last["timeline"]
    )

    # Each update carried a token the hub minted for this node, naming the district hub.
    async with httpx.AsyncClient(timeout=30.0) as http:
        verifier = TokenVerifier(
            hub.hub.settings.issuer, COMMUNITY, JwksCache(f"{hub.url}/.well-known/jwks.json", http)
        )
        caller = await verifier.verify(
            node.received[-1].headers["authorization"].removeprefix("Bearer ")
        )
    assert caller.org == hub.hub.settings.district
    assert caller.org_kind is OrgKind.HUB
    # One outbox carries flag updates and aid steps to a node: each call holds its route's scope.
    assert caller.scopes == frozenset({"risk:verify"})
    assert caller.actor == hub.hub.settings.hub_id

    await eventually(lambda: _none_pending(hub))
    assert len(node.received) == 5  # nothing sent twice once accepted


async def _none_pending(hub: FlagsHub) -> bool:
    import sqlalchemy as sa

    from schema.runtime.db import Database

    db = Database(hub.hub.db_url)
    try:
        async with db.sessions() as session:
            pending = await session.execute(
                sa.text("SELECT count(*) FROM flag_outbox WHERE delivered_at IS NULL")
            )
            return int(pending.scalar_one()) == 0
    finally:
        await db.dispose()


async def test_a_node_whose_name_resolves_to_loopback_in_production_gets_nothing(
    start_flags_hub: StartHub, receivers: Any
) -> None:
    node = Receiver()
    by_name = receivers(node).replace("127.0.0.1", "localhost")
    hub = await start_flags_hub({COMMUNITY: by_name}, environment=Environment.PRODUCTION)
    await hub.raise_flag(await hub.community_token())

    async def refused() -> list[Any]:
        db = Database(hub.hub.db_url)
        try:
            async with db.sessions() as session:
                rows = await session.execute(
                    sa.text("SELECT attempts, last_error FROM flag_outbox WHERE attempts > 0")
                )
                return list(rows)
        finally:
            await db.dispose()

    [(attempts, error), *_] = await eventually(refused)
    assert attempts >= 1
    assert error.startswith(
        "URL_NOT_ALLOWED: the host localhost is a loopback, link-local or private address ("
    )
    assert node.calls == 0  # the update never reached it
