"""The application in a real browser on each backend: a hub and a community node on
SQLite or PostgreSQL, people in two browser contexts, and a session that ends.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from hub.auth.service import create_client
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import BACKENDS
from tests.hub.flags.conftest import eventually
from tests.node.flags.conftest import COMMUNITY, DEPT_GAS, FlagRig, flag_rig
from tests.web.conftest import WAIT_MS, open_app

pytestmark = pytest.mark.slow

AREA = {"west": 116.437, "south": 39.905, "east": 116.449, "north": 39.913}


@dataclass
class Person:
    client_id: str
    secret: str
    token: str


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlagRig]:
    async with flag_rig(request.param, tmp_path) as built:
        yield built


async def _person(rig: FlagRig, hub_url: str, *, org: str, kind: OrgKind, scopes: str) -> Person:
    db = Database(rig.hub_db_url)
    try:
        async with db.transaction() as session:
            client, secret = await create_client(
                session, org=org, org_kind=kind, district="110105", scopes=scopes
            )
    finally:
        await db.dispose()
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{hub_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, secret),
        )
    response.raise_for_status()
    return Person(client.client_id, secret, response.json()["access_token"])


async def test_staff_and_a_department_work_a_flag_through_the_page(
    rig: FlagRig, browser: Browser
) -> None:
    hub = await rig.start_hub()
    rig.start_node(bbox=AREA)
    staff = await _person(
        rig, hub.url, org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes="risk:flag incidents:read"
    )
    officer = await _person(
        rig, hub.url, org=DEPT_GAS, kind=OrgKind.DEPARTMENT, scopes="risk:verify incidents:read"
    )

    async def described() -> bool:
        async with httpx.AsyncClient() as http:
            body = (
                await http.post(
                    f"{hub.url}/graphql",
                    json={"query": "{ communities { bbox { west } } }"},
                    headers={"Authorization": f"Bearer {staff.token}"},
                )
            ).json()
        return body["data"]["communities"] == [{"bbox": {"west": AREA["west"]}}]

    await eventually(described, timeout_s=30)
    office_page, office_log = await open_app(browser, hub.url, officer.token)
    staff_page, staff_log = await open_app(browser, hub.url, staff.token)
    for page in (office_page, staff_page):
        await expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)

    # staff click the map inside their community's area and raise a flag there
    await staff_page.click("#raise-mode")
    area = await staff_page.locator(
        f'.feature.community[data-owner="{COMMUNITY}"] rect'
    ).bounding_box()
    assert area is not None
    await staff_page.mouse.click(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
    await staff_page.fill("#raise-description", "燃气味 gas smell, raised on the map")
    await staff_page.select_option("#raise-category", "gas_leak")
    await staff_page.click("#raise-form button[type=submit]")
    await expect(staff_page.locator("#raise-result")).to_contain_text("RiskFlag:", timeout=WAIT_MS)
    flag_id = (await staff_page.inner_text("#raise-result")).split(": ", 1)[1].strip()
    at_node = await rig.node_sql("SELECT location FROM risk_flags")
    assert len(at_node) == 1
    # the department's page gets it live, with the button its scope allows
    row = office_page.locator(f'#flags li[data-flag="{flag_id}"]')
    await expect(row).to_have_attribute("data-status", "ROUTED", timeout=WAIT_MS)
    await row.locator("button[data-to=ACKNOWLEDGED]").click()
    mine = staff_page.locator(f'#flags li[data-flag="{flag_id}"]')
    started = time.perf_counter()
    await expect(mine).to_have_attribute("data-status", "ACKNOWLEDGED", timeout=WAIT_MS)
    print(f"[{rig.backend}] acknowledged -> on the community's page: "
          f"{time.perf_counter() - started:.3f} s")  # fmt: skip
    await expect(row.locator("button[data-to=VERIFYING]")).to_be_visible()
    assert await mine.locator("button").count() == 0

    # the officer's session ends (its token revoked): the page asks for a sign-in again
    async with httpx.AsyncClient() as http:
        revoked = await http.post(
            f"{hub.url}/oauth/revoke",
            data={"token": officer.token},
            auth=(officer.client_id, officer.secret),
        )
    assert revoked.status_code == 200
    await expect(office_page.locator("#signin")).to_be_visible(timeout=WAIT_MS)
    await expect(office_page.locator("#live")).not_to_have_attribute("data-state", "live")
    assert staff_log.errors == []
    assert [e for e in office_log.errors if "401" not in e] == []
