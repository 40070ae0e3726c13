"""A district hub over a real community node, and (for the journey) a real city hub process.

The node holds an incident and a shelter near it; the district's emergency office
(a department with ``sitrep:write``) writes reports at the district hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from hub.auth.service import create_client
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from node.settings import NodeSettings
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import (
    DatabaseUnderTest,
    GraphQLClient,
    ServerThread,
    _empty_database,
    free_port,
    migrate,
)
from tests.hub.federation.conftest import DISTRICT, RunningHub, hub_over, wait_sources_ok

COMMUNITY = "110105001001"
OFFICE = "110105400001"  # the district emergency office: writes the reports
OFFICE_SCOPES = "incidents:read shelters:read resources:read risk:verify sitrep:write sitrep:read"
STAFF_SCOPES = "records:write incidents:read shelters:read"
CITY = "110100"
CITY_OFFICE = "110100400001"

INCIDENT_TITLE = "地下车库积水"
INCIDENT_TEXT = "暴雨导致朝阳区某小区地下车库积水，深约1.2米"
SHELTER_NAME = "永安里小学体育馆"


@dataclass
class District:
    """A district hub, its node, and the office's GraphQL client."""

    hub: RunningHub
    node: ServerThread
    office: GraphQLClient
    backend: str
    folder: Path
    incidents: dict[str, str] = field(default_factory=dict)  # title: global id

    @property
    def url(self) -> str:
        return self.hub.url

    async def add_incident(
        self, *, title: str = INCIDENT_TITLE, level: str = "II", started: datetime | None = None
    ) -> str:
        """An incident at the node (created by its staff); its global id."""
        staff = await self.staff()
        reported = (started or datetime.now(UTC) - timedelta(minutes=10)).isoformat()
        created = await staff.data(
            """mutation($i: IncidentCreateInput!) { createIncident(input: $i) { id } }""",
            {
                "i": {
                    "title": title,
                    "category": "NATURAL_DISASTER",
                    "severityLevel": level,
                    "description": INCIDENT_TEXT,
                    "address": "朝阳区永安里东街1号",
                    "affectedPeople": 120,
                    "reportedAt": reported,
                    "location": {"coordinates": [116.4431, 39.9087]},
                }
            },
        )
        incident_id: str = created["createIncident"]["id"]
        self.incidents[title] = incident_id
        return incident_id

    async def staff(self) -> GraphQLClient:
        token = await self.hub.client_token(
            org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes=STAFF_SCOPES, resource=COMMUNITY
        )
        client = GraphQLClient(self.node.url, token)
        self.hub.clients.append(client)
        return client

    async def create(self, incident_id: str, kind: str = "INITIAL") -> dict[str, Any]:
        data = await self.office.data(CREATE, {"incident": incident_id, "kind": kind})
        report: dict[str, Any] = data["createSituationReport"]
        return report


REPORT_SELECTION = """{ id origin originDistrict incidentId kind severity status version revision
  dueAt overdue escalatedAt escalatedTo
  fields { occurredAt place summary deaths injured missing affectedPeople measures resourcesUsed
           needs }
  basis { path source status count } versions { version forwardedAt forwardError receivedAt } }"""
CREATE = (
    "mutation($incident: String!, $kind: ReportKind!) {"
    f" createSituationReport(incidentId: $incident, kind: $kind) {REPORT_SELECTION} }}"
)
EDIT = (
    "mutation($id: ID!, $rev: Int!, $fields: SituationReportFieldsInput!) {"
    f" editSituationReport(id: $id, expectedRevision: $rev, fields: $fields) {REPORT_SELECTION} }}"
)
SUBMIT = (
    "mutation($id: ID!, $rev: Int!) {"
    f" submitSituationReport(id: $id, expectedRevision: $rev) {REPORT_SELECTION} }}"
)
REPORT = f"query($id: ID!) {{ situationReport(id: $id) {REPORT_SELECTION} }}"
COUNT = "{ situationReports(first: 100) { edges { node { id version } } } }"


async def register_client(
    db_url: str, *, org: str, kind: OrgKind, scopes: str, district: str | None
) -> tuple[str, str]:
    """A client registered straight in a hub's database: (id, secret)."""
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            client, secret = await create_client(
                session, org=org, org_kind=kind, district=district, scopes=scopes
            )
    finally:
        await db.dispose()
    return client.client_id, secret


async def client_token(url: str, client_id: str, secret: str, scopes: str) -> str:
    async with httpx.AsyncClient(timeout=30.0) as http:
        response = await http.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials", "scope": scopes},
            auth=(client_id, secret),
        )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def start_district(
    fresh_database: DatabaseUnderTest, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """Start a district hub (on the backend under test) over one node; stopped after the test."""
    async with AsyncExitStack() as stack:
        started: list[District] = []

        async def start(**overrides: Any) -> District:
            hub_db = fresh_database
            node_db = await stack.enter_async_context(
                _empty_database(hub_db.backend, tmp_path / "node")
            )
            await migrate(HUB_MIGRATIONS, hub_db.url)
            await migrate(NODE_MIGRATIONS, node_db.url)
            node_port = free_port()
            hub = await hub_over(
                hub_db.url,
                tmp_path,
                {COMMUNITY: f"http://127.0.0.1:{node_port}"},
                **overrides,
            )
            settings = NodeSettings(
                database_url=node_db.url, org_code=COMMUNITY, org_name="永安里社区",
                district=DISTRICT, neighbours=[], token_issuer=hub.settings.issuer,
                jwks_url=f"{hub.url}/.well-known/jwks.json",
            )  # fmt: skip
            node = ServerThread(create_node(settings), node_port).start()
            office = await hub.graphql(org=OFFICE, kind=OrgKind.DEPARTMENT, scopes=OFFICE_SCOPES)
            district = District(hub, node, office, hub_db.backend, tmp_path)
            started.append(district)
            await wait_sources_ok(office, 1)
            staff = await district.staff()
            await staff.data(
                """mutation { createShelter(input: {name: "永安里小学体育馆", capacity: 300,
                occupancy: 40, location: {coordinates: [116.4435, 39.9090]}}) { id } }"""
            )
            return district

        try:
            yield start
        finally:
            for district in started:
                await asyncio.to_thread(district.node.stop)
                await district.hub.stop()
