"""A risk flag from a community node to a district department and back, over real servers.

The node and the hub each run on their own database (SQLite or PostgreSQL),
talk real HTTP with real OAuth tokens from the hub, and the department follows
``flagEvents`` over graphql-transport-ws. The second test runs the hub as a
``linli hub serve`` process and kills it (SIGKILL) while flags are being raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from schema.enums import OrgKind
from tests.conftest import BACKENDS, GraphQLClient
from tests.hub.flags.conftest import ROUTING, Subscriber
from tests.node.flags.conftest import (
    COMMUNITY,
    DEPT_GAS,
    RAISE,
    FlagRig,
    eventually,
    flag_input,
    flag_rig,
)

MOVE = """mutation ($id: ID!, $to: RiskFlagStatus!, $v: Int!) {
  transitionFlag(id: $id, to: $to, expectedVersion: $v) { status version } }"""
AT_NODE = """query ($id: ID!) { node(id: $id) { ... on RiskFlag {
  id status version assignedTo transitions { status at by note } timeline { hop at } } } }"""
STAFF_SCOPES = "risk:flag incidents:read"


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlagRig]:
    """Migrated hub and node databases on one backend, and the node's client at the hub."""
    async with flag_rig(request.param, tmp_path) as built:
        yield built


async def oauth_token(
    hub_url: str, rig: FlagRig, *, org: str, kind: OrgKind, scopes: str, resource: str | None
) -> str:
    """A client registered at the hub, and a token from the hub's ``/oauth/token``."""
    from hub.auth.service import create_client
    from schema.runtime.db import Database

    db = Database(rig.hub_db_url)
    try:
        async with db.transaction() as session:
            client, secret = await create_client(
                session, org=org, org_kind=kind, district="110105", scopes=scopes
            )
    finally:
        await db.dispose()
    form = {"grant_type": "client_credentials", "scope": scopes}
    if resource:
        form["resource"] = resource
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.post(
            f"{hub_url}/oauth/token", data=form, auth=(client.client_id, secret)
        )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


async def test_a_flag_reaches_the_department_and_its_outcome_comes_back(rig: FlagRig) -> None:
    hub = await rig.start_hub()
    rig.start_node()
    staff = rig.client(
        await oauth_token(
            hub.url, rig, org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes=STAFF_SCOPES,
            resource=COMMUNITY,
        )
    )  # fmt: skip
    department_token = await oauth_token(
        hub.url, rig, org=DEPT_GAS, kind=OrgKind.DEPARTMENT, scopes="risk:verify", resource=None
    )
    subscriber = await Subscriber.open(
        hub.url.replace("http://", "ws://") + "/graphql", department_token
    )
    department = GraphQLClient(hub.url, department_token)
    try:
        assert (await subscriber.ack())["type"] == "connection_ack"
        await subscriber.subscribe()
        await asyncio.sleep(0.3)  # the subscription is live before the flag is raised
        started = time.perf_counter()
        raised = (await staff.data(RAISE, {"i": flag_input(1)}))["raiseRiskFlag"]
        flag_id = raised["id"]
        routed = await subscriber.event(timeout_s=30)
        print(f"raised at the node -> department's subscription: "
              f"{(time.perf_counter() - started) * 1000:.0f} ms")  # fmt: skip
        assert routed["type"] == "flag.routed"
        assert routed["flagId"] == flag_id
        assert routed["assignedTo"] == DEPT_GAS
        assert routed["community"] == COMMUNITY

        steps = ["ACKNOWLEDGED", "VERIFYING", "CONFIRMED", "RESOLVED"]
        for version, to in enumerate(steps, start=1):
            moved = await department.data(MOVE, {"id": flag_id, "to": to, "v": version})
            assert moved["transitionFlag"] == {"status": to, "version": version + 1}
            event = await subscriber.event(timeout_s=30)
            assert (event["type"], event["flagId"], event["status"]) == (
                "flag.status_changed",
                flag_id,
                to,
            )
    finally:
        await subscriber.close()
        await department.aclose()

    async def resolved_at_node() -> dict[str, Any] | None:
        state: dict[str, Any] = (await staff.data(AT_NODE, {"id": flag_id}))["node"]
        return state if state["status"] == "RESOLVED" else None

    state = await eventually(resolved_at_node, timeout_s=30)
    assert state["assignedTo"] == DEPT_GAS
    assert [t["status"] for t in state["transitions"]] == [
        "RAISED",
        "ROUTED",
        "ACKNOWLEDGED",
        "VERIFYING",
        "CONFIRMED",
        "RESOLVED",
    ]
    assert state["transitions"][2]["by"] == DEPT_GAS
    hops = {h["hop"]: h["at"] for h in state["timeline"]}
    assert {
        "raised_at_node",
        "received_at_hub",
        "routed",
        "acknowledged",
        "verifying",
        "confirmed",
        "resolved",
    } <= set(hops)
    assert hops["raised_at_node"] == state["transitions"][0]["at"]  # the node's own moment
    times = [h["at"] for h in state["timeline"]]
    assert times == sorted(times)
    assert state["version"] >= 2
    listed = await staff.data(
        "{ riskFlags(where: {statuses: [RESOLVED]}) { edges { node { id status } } } }"
    )
    assert listed["riskFlags"]["edges"] == [{"node": {"id": flag_id, "status": "RESOLVED"}}]


# --- the hub killed while flags are raised ---------------------------------------------


class HubProcess:
    """``linli hub serve`` as its own process, on a fixed port and database."""

    def __init__(self, rig: FlagRig) -> None:
        self.rig = rig
        self.process: subprocess.Popen[bytes] | None = None
        self.log = rig.folder / "hub.log"
        sources = rig.folder / "sources.toml"
        sources.write_text(f'[[sources]]\nid = "{COMMUNITY}"\nurl = "{rig.node_url}"\n', "utf-8")
        routing = rig.folder / "routing.toml"
        routing.write_text(ROUTING, "utf-8")
        self.env = {
            **os.environ,
            "LINLI_DATABASE_URL": rig.hub_db_url,
            "LINLI_PORT": str(rig.hub_port),
            "LINLI_ISSUER": rig.hub_url,
            "LINLI_SOURCES_FILE": str(sources),
            "LINLI_ROUTING_FILE": str(routing),
            "LINLI_DELIVERY_POLL_S": "0.1",
            "LINLI_DELIVERY_RETRY_BASE_S": "0.2",
            "LINLI_DELIVERY_RETRY_MAX_S": "1.0",
            "LINLI_EVENT_POLL_S": "0.5",
            "LINLI_HEALTH_INTERVAL_S": "0.5",
            "LINLI_LOG_LEVEL": "WARNING",
        }

    def spawn(self) -> None:
        linli = Path(sys.executable).parent / "linli"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(linli), "hub", "serve"], env=self.env, stdout=log, stderr=log
            )

    async def start(self) -> None:
        """Start the process and wait until it is ready."""
        self.spawn()

        async def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"hub exited: {self.log.read_text('utf-8')[-2000:]}")
            try:
                async with httpx.AsyncClient(timeout=30.0) as http:
                    response = await http.get(f"{self.rig.hub_url}/readyz", timeout=1)
                return response.status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(healthy, timeout_s=120)  # a loaded machine starts a hub slowly

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


async def collect(subscriber: Subscriber, into: list[dict[str, Any]]) -> None:
    """Every event until the connection ends."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            into.append(await subscriber.event(timeout_s=60))


async def test_flags_raised_around_a_hub_crash_arrive_once_and_resume_without_gaps(
    rig: FlagRig,
) -> None:
    hub = HubProcess(rig)
    await hub.start()
    try:
        await _crash_and_recover(rig, hub)
    finally:
        hub.stop()


async def _crash_and_recover(rig: FlagRig, hub: HubProcess) -> None:
    rig.start_node(flag_retry_max_s=0.5)
    staff = rig.client(
        await oauth_token(
            rig.hub_url, rig, org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes=STAFF_SCOPES,
            resource=COMMUNITY,
        )
    )  # fmt: skip
    department_token = await oauth_token(
        rig.hub_url, rig, org=DEPT_GAS, kind=OrgKind.DEPARTMENT, scopes="risk:verify",
        resource=None,
    )  # fmt: skip
    ws_url = rig.hub_url.replace("http://", "ws://") + "/graphql"
    first = await Subscriber.open(ws_url, department_token)
    assert (await first.ack())["type"] == "connection_ack"
    await first.subscribe(after=0)
    before: list[dict[str, Any]] = []
    listening = asyncio.create_task(collect(first, before))

    raised: list[str] = []
    total, crash_after = 12, 4
    crashed = asyncio.Event()

    async def raise_flags() -> None:
        for n in range(1, total + 1):
            data = await staff.data(RAISE, {"i": flag_input(n)})
            raised.append(data["raiseRiskFlag"]["id"])
            if n == crash_after:
                hub.kill()  # mid-stream: deliveries in flight are cut off
                crashed.set()
            await asyncio.sleep(0.1)

    raising = asyncio.create_task(raise_flags())
    await crashed.wait()
    await asyncio.wait_for(listening, 10)  # the first subscription ends with the hub
    await asyncio.sleep(1.0)  # flags pile up at the node while the hub is down
    pending = [r for r in await rig.outbox() if r.status == "pending"]
    assert pending, "some flags must be waiting for the hub"
    await hub.start()  # the same port and database
    await raising

    async def all_delivered() -> bool:
        rows = await rig.outbox()
        return len(rows) == total and all(r.status == "delivered" for r in rows)

    await eventually(all_delivered, timeout_s=30)
    # Every flag at the hub exactly once, in the order raised.
    assert await rig.hub_raised_order() == raised
    hub_ids = [r[0] for r in await rig.hub_sql("SELECT id FROM flags")]
    assert sorted(hub_ids) == sorted(raised)
    assert (await rig.hub_sql("SELECT count(*) FROM flag_inbox_messages"))[0][0] == total

    # A subscriber resuming from its last sequence number sees the rest, each event once.
    last_seq = max((e["seq"] for e in before), default=0)
    second = await Subscriber.open(ws_url, department_token)
    try:
        assert (await second.ack())["type"] == "connection_ack"
        await second.subscribe(after=last_seq)
        after: list[dict[str, Any]] = []
        seen = {e["flagId"] for e in before if e["type"] == "flag.routed"}
        while seen != set(raised):
            event = await second.event(timeout_s=15)
            after.append(event)
            if event["type"] == "flag.routed":
                seen.add(event["flagId"])
        await second.nothing_more(wait_s=1.5)
    finally:
        await second.close()
    events = before + after
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    assert len(seqs) == len(set(seqs))
    assert all(e["seq"] > last_seq for e in after)
    routed = [e["flagId"] for e in events if e["type"] == "flag.routed"]
    assert sorted(routed) == sorted(raised)  # each flag's routing seen exactly once
    assert {e["assignedTo"] for e in events} == {DEPT_GAS}
