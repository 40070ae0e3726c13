"""A real hub and a real node (``FlagRig``), a staff member who registers sensors, and devices.

Devices and staff hold real OAuth tokens from the hub's ``/oauth/token``
(client credentials, ``resource`` = the node), so the node checks them as it
checks every token in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.auth.service import create_client
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import BACKENDS, GraphQLClient
from tests.node.flags.conftest import COMMUNITY, DISTRICT, FlagRig, flag_rig

NEIGHBOUR = "110105001002"
STAFF_SCOPES = "records:write incidents:read risk:flag"
CREATE = """mutation ($i: SensorCreateInput!) { createSensor(input: $i) { id code version } }"""
SENSOR = """query ($id: ID!) { node(id: $id) { ... on Sensor {
  id status alarmRules lastReadingAt lastValue series { start count min mean max } } } }"""
FLAGS = """query { riskFlags(first: 100) { edges { node {
  id category estimatedSeverity status description
  source { sensor rule unit level } evidence { t v } timeline { hop at } } } } }"""
FAST_SENSORS = {"sensor_check_s": 0.2}
# Six hours ago, on the minute: inside raw retention (7 days), never in the future.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=6)


def at(seconds: float) -> float:
    """A SenML time (seconds since the epoch) ``seconds`` after ``T0``."""
    return (T0 + timedelta(seconds=seconds)).timestamp()


def iso_at(seconds: float) -> str:
    """``T0`` plus ``seconds`` as GraphQL shows a time, to the second."""
    return (T0 + timedelta(seconds=seconds)).isoformat()[:19]


def water_level(code: str, device: str, rules: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": f"地下车库水位 {code}",
        "kind": "WATER_LEVEL",
        "code": code,
        "unit": "m",
        "observed": "B2层地下车库 underground car park B2",
        "category": "flooding",
        "location": {"coordinates": [116.4435, 39.9087]},
        "address": "建外街道某小区3号楼地下车库",
        "device": device,
        "rules": list(rules),
    }


def high_water(
    *, level: float = 0.8, clear: float | None = 0.5, duration_s: float = 60
) -> dict[str, Any]:
    return {
        "id": "high-water",
        "kind": "ABOVE",
        "level": level,
        "clear": clear,
        "durationS": duration_s,
        "severity": "II",
    }


@dataclass
class Device:
    """A device's OAuth client at the hub and its token for the node."""

    client_id: str
    token: str


@dataclass
class SensorRig:
    """The flag rig with sensors: staff, devices, and helpers to send and count readings."""

    rig: FlagRig
    staff: GraphQLClient | None = None
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=60))

    @property
    def node_url(self) -> str:
        return self.rig.node_url

    async def client(
        self,
        *,
        scopes: str,
        org: str = COMMUNITY,
        kind: OrgKind = OrgKind.COMMUNITY,
        resource: str | None = COMMUNITY,
    ) -> Device:
        """A client of ``org`` at the hub and its token for this node (None: for the hub)."""
        db = Database(self.rig.hub_db_url)
        try:
            async with db.transaction() as session:
                client, secret = await create_client(
                    session, org=org, org_kind=kind, district=DISTRICT, scopes=scopes
                )
        finally:
            await db.dispose()
        form = {"grant_type": "client_credentials", "scope": scopes}
        if resource is not None:
            form["resource"] = resource
        response = await self.http.post(
            f"{self.rig.hub_url}/oauth/token", data=form, auth=(client.client_id, secret)
        )
        response.raise_for_status()
        return Device(client.client_id, response.json()["access_token"])

    async def device(self) -> Device:
        return await self.client(scopes="sensors:write")

    async def create_sensor(self, sensor: dict[str, Any]) -> str:
        assert self.staff is not None
        created = await self.staff.data(CREATE, {"i": sensor})
        sensor_id: str = created["createSensor"]["id"]
        return sensor_id

    async def send(self, device: Device | str, pack: Any) -> httpx.Response:
        """POST a SenML pack (a JSON value, or raw bytes) with ``device``'s token."""
        token = device.token if isinstance(device, Device) else device
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/senml+json"}
        if isinstance(pack, bytes):
            return await self.http.post(
                f"{self.node_url}/sensors/readings", content=pack, headers=headers
            )
        return await self.http.post(f"{self.node_url}/sensors/readings", json=pack, headers=headers)

    async def sent(self, device: Device, pack: Any, *, refused: int = 0) -> dict[str, Any]:
        """The answer to a pack that is taken, with ``refused`` of its records refused."""
        response = await self.send(device, pack)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["refused"] == refused, body
        return body

    async def readings(self, sensor_local: str | None = None) -> list[tuple[datetime, float]]:
        """The stored raw readings (of one sensor), by time."""
        where = "" if sensor_local is None else " WHERE sensor_id = :s"
        rows = await self.rig.node_sql(
            f"SELECT t, value FROM sensor_readings{where} ORDER BY t", s=sensor_local
        )
        return [(r[0], r[1]) for r in rows]

    async def flags(self) -> list[dict[str, Any]]:
        assert self.staff is not None
        data = await self.staff.data(FLAGS)
        return [edge["node"] for edge in data["riskFlags"]["edges"]]

    async def sensor(self, sensor_id: str) -> dict[str, Any]:
        assert self.staff is not None
        found: dict[str, Any] = (await self.staff.data(SENSOR, {"id": sensor_id}))["node"]
        return found

    async def close(self) -> None:
        await self.http.aclose()


def error_code(response: httpx.Response) -> str:
    """The ``code`` of a plain endpoint's error document."""
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


def local(global_id: str) -> str:
    return global_id.rsplit(":", 1)[1]


async def start(rig: FlagRig, **node_settings: Any) -> SensorRig:
    """The hub and the node (with ``node_settings``) running, and staff to register sensors."""
    await rig.start_hub()
    rig.start_node(**{"neighbours": [NEIGHBOUR], **FAST_SENSORS, **node_settings})
    built = SensorRig(rig)
    staff = await built.client(scopes=STAFF_SCOPES)
    built.staff = rig.client(staff.token)
    return built


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlagRig]:
    """A ``flag_rig`` (hub and node databases) on each backend."""
    async with flag_rig(request.param, tmp_path) as built:
        yield built


@pytest.fixture
async def sensors(rig: FlagRig) -> AsyncIterator[SensorRig]:
    """The hub and node running with fast sensor checks."""
    built = await start(rig)
    try:
        yield built
    finally:
        await built.close()
