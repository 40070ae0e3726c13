"""A water level crosses its alarm: one flag with its readings reaches a department, and back.

Real hub and node (SQLite and PostgreSQL), real OAuth tokens, SenML over HTTP
from a device; the department follows ``flagEvents`` over graphql-transport-ws
at the hub and reads the flag and the sensor there, federated; a neighbour
sees that the sensor is in alarm, not its readings.
"""

from __future__ import annotations

import asyncio
from typing import Any

from schema.enums import OrgKind
from tests.conftest import GraphQLClient
from tests.hub.flags.conftest import DEPT_DEFAULT, Subscriber
from tests.integration.conftest import wait_sources_ok
from tests.node.flags.conftest import COMMUNITY
from tests.node.sensors.conftest import (
    NEIGHBOUR,
    SensorRig,
    at,
    high_water,
    iso_at,
    rig,
    sensors,
    water_level,
)

__all__ = ["rig", "sensors"]  # the fixtures

HUB_FLAG = """query ($id: ID!) { flag(id: $id) {
  id status category severity assignedTo source { sensor rule unit level } evidence { t v }
  timeline { hop at } } }"""
HUB_SENSORS = """query { sensors(first: 50) { edges { node {
  id name status alarmRules lastValue series { count max } location { coordinates } } } } }"""


def _pack(readings: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """A pack whose first record carries the base name and unit; all must be accepted."""
    records: list[dict[str, Any]] = [{"t": at(t), "v": v} for t, v in readings]
    records[0] = {"bn": "urn:dev:linli:cp-b2", "bu": "m", **records[0]}
    return records


async def test_a_held_crossing_raises_one_flag_with_evidence_that_a_department_follows(
    sensors: SensorRig,
) -> None:
    device = await sensors.device()
    rule = high_water(level=0.8, clear=0.5, duration_s=120)
    sensor = await sensors.create_sensor(water_level("urn:dev:linli:cp-b2", device.client_id,
                                                     [rule]))  # fmt: skip
    office = await sensors.client(
        scopes="risk:verify incidents:read",
        org=DEPT_DEFAULT,
        kind=OrgKind.DEPARTMENT,
        resource=None,
    )
    hub_url = sensors.rig.hub_url
    subscriber = await Subscriber.open(hub_url.replace("http://", "ws://") + "/graphql",
                                       office.token)  # fmt: skip
    department = GraphQLClient(hub_url, office.token)
    try:
        assert (await subscriber.ack())["type"] == "connection_ack"
        await subscriber.subscribe()
        await asyncio.sleep(0.3)
        # A rain event: the level rises past 0.8 m at 60 s and stays there.
        rising = [(0, 0.2), (30, 0.5), (60, 0.82), (90, 0.86), (120, 0.9), (150, 0.93)]
        early = await sensors.sent(device, _pack(rising[:5]))
        assert early["flagsRaised"] == []  # 0.82 since 60 s: held 60 s of 120
        held = await sensors.sent(device, _pack([*rising[5:], (180, 0.97), (210, 0.99)]))
        [flag_id] = held["flagsRaised"]  # held 120 s at 180 s
        routed = await subscriber.event(timeout_s=30)
        assert routed["type"] == "flag.routed"
        assert routed["flagId"] == flag_id
        assert routed["assignedTo"] == DEPT_DEFAULT  # flooding: the default route
        at_hub = (await department.data(HUB_FLAG, {"id": flag_id}))["flag"]
        assert at_hub["category"] == "flooding"
        assert at_hub["severity"] == "II"
        assert at_hub["source"] == {
            "sensor": sensor, "rule": "high-water", "unit": "m", "level": 0.8,
        }  # fmt: skip
        assert [e["v"] for e in at_hub["evidence"]] == [0.82, 0.86, 0.9, 0.93, 0.97]

        # Still in alarm: more readings, no second flag.
        more = await sensors.sent(device, _pack([(240, 0.95), (270, 0.7), (300, 0.6)]))
        assert more["flagsRaised"] == []

        await wait_sources_ok(department, COMMUNITY)
        listed = (await department.data(HUB_SENSORS))["sensors"]["edges"]
        [seen] = [edge["node"] for edge in listed]
        assert (seen["id"], seen["status"], seen["alarmRules"]) == (sensor, "ALARM",
                                                                     ["high-water"])  # fmt: skip
        assert seen["lastValue"] == 0.6
        assert sum(point["count"] for point in seen["series"]) == 11

        neighbour = await sensors.client(scopes="incidents:read", org=NEIGHBOUR, resource=None)
        neighbour_client = GraphQLClient(hub_url, neighbour.token)
        try:
            [shown] = [
                edge["node"]
                for edge in (await neighbour_client.data(HUB_SENSORS))["sensors"]["edges"]
            ]
        finally:
            await neighbour_client.aclose()
        assert (shown["status"], shown["name"]) == ("ALARM", seen["name"])
        assert (shown["lastValue"], shown["series"], shown["alarmRules"]) == (
            None,
            None,
            ["high-water"],
        )
        assert shown["location"]["coordinates"] != seen["location"]["coordinates"]  # ~500 m

        # The level falls below the clear level: the flag's timeline records it and the
        # department is told; the flag stays routed until the department resolves it.
        cleared = await sensors.sent(device, _pack([(330, 0.45)]))
        assert cleared["flagsCleared"] == [flag_id]
        event = await subscriber.event(timeout_s=30)
        assert (event["type"], event["flagId"], event["status"]) == (
            "flag.condition_cleared", flag_id, "ROUTED",
        )  # fmt: skip
        hops = {hop["hop"]: hop["at"] for hop in event["timeline"]}
        assert hops["condition_cleared"].startswith(iso_at(330))
        at_hub = (await department.data(HUB_FLAG, {"id": flag_id}))["flag"]
        assert at_hub["status"] == "ROUTED"
        [at_node] = await sensors.flags()
        assert "condition_cleared" in {h["hop"] for h in at_node["timeline"]}
        await subscriber.nothing_more(wait_s=1.0)
    finally:
        await subscriber.close()
        await department.aclose()
