"""Journey 4: an initial report prefilled at the district, edited, submitted, seen at the city.

The city hub is a real second hub process (``linli hub serve``) on its own database;
the district hub sends the version up with a token it gets from the city for its
own client there. The same code stores and shows it at the city.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from docx import Document

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from hub.governance.audit import AUDIT_LOG
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, GraphQLClient, _empty_database, free_port, migrate
from tests.hub.flags.conftest import eventually
from tests.hub.sitreps.conftest import (
    CITY,
    EDIT,
    INCIDENT_TITLE,
    REPORT,
    SUBMIT,
    District,
    client_token,
    register_client,
)
from tests.processes import ServiceProcess

DISTRICT_HUB = "hub-110105"  # the default hub_id of a district hub
PROVINCE = "110000"
CITY_REPORTS = """{ situationReports(first: 10) { edges { node { id origin originDistrict
  incidentId kind status version fields { injured needs summary } versions { version receivedAt }
} } } }"""


@dataclass
class City:
    process: ServiceProcess
    db_url: str
    office: GraphQLClient
    office_token: str
    district_client: tuple[str, str]  # the district hub's client at the city

    @property
    def url(self) -> str:
        return self.process.url


@contextlib.asynccontextmanager
async def upper_hub(
    backend: str,
    folder: Path,
    division: str,
    lower: tuple[str, str],
    superior: dict[str, str] | None = None,
) -> AsyncIterator[City]:
    """A hub process of ``division`` on its own database, taking reports from ``lower``.

    ``lower`` is (the lower hub's id, its district); ``superior`` the LINLI_SUPERIOR_*
    settings of this hub's own superior, if it has one.
    """
    async with _empty_database(backend, folder / division) as database:
        await migrate(HUB_MIGRATIONS, database.url)
        # As hub.federation.superior has it: the lower hub's own client, named by its id.
        lower_client = await register_client(
            database.url, org=lower[0], kind=OrgKind.HUB, scopes="sitrep:submit",
            district=lower[1],
        )  # fmt: skip
        office_client = await register_client(
            database.url, org=f"{division}400001", kind=OrgKind.DEPARTMENT,
            scopes="sitrep:read", district=division,
        )  # fmt: skip
        port = free_port()
        env = {
            "LINLI_DATABASE_URL": database.url,
            "LINLI_ISSUER": f"http://127.0.0.1:{port}",
            "LINLI_HUB_ID": f"hub-{division}",
            "LINLI_HUB_NAME": f"应急数据枢纽 hub {division}",
            "LINLI_DISTRICT": division,
            "LINLI_DUTY_DESK": f"{division}400000",
            "LINLI_DELIVERY_POLL_S": "0.1",
            **(superior or {}),
        }
        process = ServiceProcess(
            f"hub {division}", ["hub", "serve", "--no-migrate"], env, port,
            folder / f"{division}.log",
        )  # fmt: skip
        try:
            await process.start()
            token = await client_token(process.url, *office_client, "sitrep:read")
            office = GraphQLClient(process.url, token)
            try:
                yield City(process, database.url, office, token, lower_client)
            finally:
                await office.aclose()
        finally:
            await asyncio.to_thread(process.stop)


@pytest.fixture
async def city(fresh_database: DatabaseUnderTest, tmp_path: Path) -> AsyncIterator[City]:
    """A city hub process on its own database of the backend under test."""
    async with upper_hub(fresh_database.backend, tmp_path, CITY, (DISTRICT_HUB, "110105")) as up:
        yield up


async def test_an_initial_report_prefilled_edited_submitted_is_seen_at_the_city(
    city: City, start_district: Callable[..., Any]
) -> None:
    district: District = await start_district(
        superior_url=city.url,
        superior_client_id=city.district_client[0],
        superior_client_secret=city.district_client[1],
        delivery_poll_s=0.1,
    )
    incident = await district.add_incident()
    draft = await district.create(incident)
    assert INCIDENT_TITLE in draft["fields"]["summary"]  # prefilled from the node, live
    await district.office.data(
        EDIT,
        {"id": draft["id"], "rev": 1, "fields": {"injured": 2, "needs": "请求支援抽水泵 2 台"}},
    )
    submitted = (await district.office.data(SUBMIT, {"id": draft["id"], "rev": 2}))[
        "submitSituationReport"
    ]
    assert submitted["version"] == 1

    async def at_city() -> list[dict[str, Any]]:
        data = await city.office.data(CITY_REPORTS)
        return [e["node"] for e in data["situationReports"]["edges"] if e["node"]["version"] >= 1]

    (seen,) = await eventually(at_city, timeout_s=30.0)
    assert seen["id"] == draft["id"]
    assert (seen["origin"], seen["originDistrict"]) == (district.hub.settings.hub_id, "110105")
    assert (seen["incidentId"], seen["kind"], seen["status"]) == (incident, "INITIAL", "SUBMITTED")
    assert (seen["fields"]["injured"], seen["fields"]["needs"]) == (2, "请求支援抽水泵 2 台")
    assert INCIDENT_TITLE in seen["fields"]["summary"]
    assert [v["version"] for v in seen["versions"]] == [1]
    assert seen["versions"][0]["receivedAt"] is not None

    async def forwarded() -> Any:
        report = (await district.office.data(REPORT, {"id": draft["id"]}))["situationReport"]
        return report["versions"][0]["forwardedAt"]

    await eventually(forwarded, timeout_s=30.0)

    # A second version follows the first up.
    await district.office.data(EDIT, {"id": draft["id"], "rev": 2, "fields": {"injured": 3}})
    await district.office.data(SUBMIT, {"id": draft["id"], "rev": 3})

    async def second_at_city() -> Any:
        return [n for n in await at_city() if n["version"] == 2]

    (second,) = await eventually(second_at_city, timeout_s=30.0)
    assert second["fields"]["injured"] == 3
    assert [v["version"] for v in second["versions"]] == [1, 2]

    # JSON at an HTTP endpoint, and the document a department files, both at the city.
    headers = {"Authorization": f"Bearer {city.office_token}"}
    async with httpx.AsyncClient(base_url=city.url, headers=headers, timeout=30.0) as http:
        as_json = (await http.get(f"/sitreps/{draft['id']}")).json()
        assert (as_json["version"], as_json["fields"]["injured"]) == (2, 3)
        assert [v["version"] for v in as_json["versions"]] == [1, 2]
        response = await http.get(f"/sitreps/{draft['id']}/document.docx", params={"version": 1})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.wordprocessingml"
        )
        missing = await http.get(f"/sitreps/{draft['id']}/document.docx", params={"version": 9})
        assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    document = Document(io.BytesIO(response.content))
    text = "\n".join(
        [p.text for p in document.paragraphs]
        + [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    )
    assert "突发事件信息初报" in text
    assert INCIDENT_TITLE in text
    assert "请求支援抽水泵 2 台" in text  # version 1's needs
    assert "受伤人数 Injured" in text

    # The city's audit log holds each version received, naming the district's client.
    db = Database(city.db_url)
    try:
        async with db.sessions() as session:
            rows = list(
                (
                    await session.execute(
                        sa.select(AUDIT_LOG).where(AUDIT_LOG.c.action == "sitrep.receive")
                    )
                ).mappings()
            )
    finally:
        await db.dispose()
    assert [json.loads(r["decision"])["version"] for r in rows] == [1, 2]
    assert {(r["org"], r["client_id"]) for r in rows} == {(DISTRICT_HUB, city.district_client[0])}


async def test_reports_on_severe_incidents_are_relayed_to_the_province_unchanged(
    fresh_database: DatabaseUnderTest, tmp_path: Path, start_district: Callable[..., Any]
) -> None:
    # Province 110000 over city 110100 over district 110105: the city relays what it
    # receives on incidents of level II or worse (the default), and keeps the others.
    backend = fresh_database.backend
    async with upper_hub(backend, tmp_path, PROVINCE, (f"hub-{CITY}", CITY)) as province:
        superior = {
            "LINLI_SUPERIOR_URL": province.url,
            "LINLI_SUPERIOR_CLIENT_ID": province.district_client[0],
            "LINLI_SUPERIOR_CLIENT_SECRET": province.district_client[1],
        }
        async with upper_hub(backend, tmp_path, CITY, (DISTRICT_HUB, "110105"), superior) as city:
            district: District = await start_district(
                superior_url=city.url,
                superior_client_id=city.district_client[0],
                superior_client_secret=city.district_client[1],
                delivery_poll_s=0.1,
            )
            minor = await district.create(await district.add_incident(title="积水", level="IV"))
            await district.office.data(SUBMIT, {"id": minor["id"], "rev": 1})
            severe = await district.create(await district.add_incident(level="I"))
            await district.office.data(
                EDIT, {"id": severe["id"], "rev": 1, "fields": {"needs": "冲锋舟 4 艘"}}
            )
            await district.office.data(SUBMIT, {"id": severe["id"], "rev": 2})

            async def reports(at: City) -> dict[str, dict[str, Any]]:
                data = await at.office.data(CITY_REPORTS)
                return {e["node"]["id"]: e["node"] for e in data["situationReports"]["edges"]}

            async def at_province() -> dict[str, dict[str, Any]]:
                return {k: v for k, v in (await reports(province)).items() if k == severe["id"]}

            relayed = (await eventually(at_province, timeout_s=30.0))[severe["id"]]
            # The city has both; the province only the severe one (sent after the minor).
            assert set(await reports(city)) == {minor["id"], severe["id"]}
            assert set(await reports(province)) == {severe["id"]}
            assert (relayed["origin"], relayed["originDistrict"]) == (DISTRICT_HUB, "110105")
            assert relayed["fields"]["needs"] == "冲锋舟 4 艘"
            assert [v["version"] for v in relayed["versions"]] == [1]

            # The province's audit log names the city's hub as the one that sent it.
            db = Database(province.db_url)
            try:
                async with db.sessions() as session:
                    rows = list(
                        (
                            await session.execute(
                                sa.select(AUDIT_LOG).where(AUDIT_LOG.c.action == "sitrep.receive")
                            )
                        ).mappings()
                    )
            finally:
                await db.dispose()
            assert [(r["org"], r["client_id"]) for r in rows] == [
                (f"hub-{CITY}", province.district_client[0])
            ]
