"""Two node processes on one PostgreSQL database share one flag outbox: each row goes once.

The outbox is filled first (an in-process node without a hub), then two
``linli node serve`` processes start on that database and retry quickly against a
hub port nobody listens on yet; when the hub starts, both race for every row.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import free_port
from tests.node.flags.conftest import COMMUNITY, DISTRICT, FlagRig, eventually, metric
from tests.processes import ServiceProcess

ROWS = 40


def node_process(rig: FlagRig, name: str, port: int) -> ServiceProcess:
    """A delivering node of the rig's community, on the rig's node database, retrying fast."""
    env = {
        "LINLI_DATABASE_URL": rig.node_db_url,
        "LINLI_ORG_CODE": COMMUNITY,
        "LINLI_DISTRICT": DISTRICT,
        "LINLI_TOKEN_ISSUER": rig.hub_url,
        "LINLI_JWKS_URL": f"{rig.hub_url}/.well-known/jwks.json",
        "LINLI_HUB_URL": rig.hub_url,
        "LINLI_HUB_CLIENT_ID": rig.client_id,
        "LINLI_HUB_CLIENT_SECRET": rig.client_secret,
        "LINLI_FLAG_TIMEOUT_S": "5",
        "LINLI_FLAG_RETRY_BASE_S": "0.05",
        "LINLI_FLAG_RETRY_MAX_S": "0.2",
        "LINLI_FLAG_POLL_S": "0.05",
        "LINLI_LOG_LEVEL": "WARNING",
    }
    folder = rig.folder
    return ServiceProcess(name, ["node", "serve", "--no-migrate"], env, port, folder / name)


async def _attempts(node: ServiceProcess) -> float:
    async with httpx.AsyncClient(timeout=30.0) as http:
        text = (await http.get(f"{node.url}/metrics")).text
    return metric(text, "linli_node_flag_delivery_attempts_total")


async def test_two_node_processes_deliver_each_outbox_row_once_and_in_order(
    rig: FlagRig,
) -> None:
    if rig.backend != "postgresql":
        pytest.skip(
            "several node processes share an outbox on PostgreSQL (row locks, SKIP LOCKED); "
            "a SQLite database serves one node process"
        )
    rig.start_node(deliver=False)
    ids = await rig.raise_flags(ROWS)
    await rig.stop_node()
    assert [r.status for r in await rig.outbox()] == ["pending"] * ROWS

    first = node_process(rig, "node-1.log", rig.node_port)  # the hub's updates go here
    second = node_process(rig, "node-2.log", free_port())
    try:
        await first.start()
        await second.start()

        async def both_trying() -> bool:  # the hub is not up: each retries the head
            return await _attempts(first) > 0 and await _attempts(second) > 0

        await eventually(both_trying, timeout_s=15)
        hub = await rig.start_hub()

        async def all_delivered() -> bool:
            rows = await rig.outbox()
            return all(r.status == "delivered" for r in rows)

        await eventually(all_delivered, timeout_s=60)
    finally:
        await asyncio.gather(asyncio.to_thread(first.stop), asyncio.to_thread(second.stop))

    # The hub was asked ROWS times in all (each row once), and in the order raised.
    scraped = (await (await hub.graphql()).http.get("/metrics")).text
    inbox = [
        line
        for line in scraped.splitlines()
        if line.startswith("linli_http_requests_total") and 'path="/flags/inbox"' in line
    ]
    assert sum(float(line.split()[-1]) for line in inbox) == ROWS, inbox
    assert all('status="200"' in line for line in inbox), inbox
    assert (await rig.hub_sql("SELECT count(*) FROM flag_inbox_messages"))[0][0] == ROWS
    assert await rig.hub_raised_order() == ids
