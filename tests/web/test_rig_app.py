"""The application in a real browser on each backend: a hub and a community node on
SQLite or PostgreSQL, people in two browser contexts, and a session that ends.
"""

from __future__ import annotations

import re
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
from tests.hub.auth.web import PASSWORD, add_person
from tests.hub.flags.conftest import eventually
from tests.node.flags.conftest import COMMUNITY, DEPT_GAS, FlagRig, flag_rig
from tests.web.conftest import WAIT_MS, open_app, session_token, sign_in

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
    async with httpx.AsyncClient(timeout=30.0) as http:
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
        async with httpx.AsyncClient(timeout=30.0) as http:
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
    async with httpx.AsyncClient(timeout=30.0) as http:
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


async def test_a_person_signs_in_stays_signed_in_and_keeps_the_form_across_sessions(
    rig: FlagRig, browser: Browser
) -> None:
    hub = await rig.start_hub(access_token_ttl_s=30)
    rig.start_node(bbox=AREA)
    db = Database(rig.hub_db_url)
    try:
        await add_person(
            db, "zhang.min", roles="community-staff", org=COMMUNITY, org_kind=OrgKind.COMMUNITY
        )
    finally:
        await db.dispose()
    page, log = await sign_in(browser, hub.url, "zhang.min", PASSWORD)
    await expect(page.locator("#who")).to_contain_text("测试 zhang.min")
    await expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    first = await session_token(page)
    claims = await page.evaluate(
        "() => JSON.parse(atob(sessionStorage.getItem('linli.token').split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))"
    )
    assert (claims["sub"], claims["client_id"], claims["org"]) == (
        "zhang.min",
        "linli-web",
        COMMUNITY,
    )

    # the page refreshes its 30-second token by itself (rotation), and stays live
    async def rotated() -> bool:
        return await session_token(page) != first

    await eventually(rotated, timeout_s=30)
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")

    # half-way through raising a flag, the session ends (signed out elsewhere)
    await page.click("#raise-mode")
    area = await page.locator(f'.feature.community[data-owner="{COMMUNITY}"] rect').bounding_box()
    assert area is not None
    await page.mouse.click(area["x"] + area["width"] / 3, area["y"] + area["height"] / 3)
    await page.fill("#raise-description", "边坡裂缝 a crack, typed before the session ended")
    await page.select_option("#raise-category", "slope_instability")
    refresh = await page.evaluate("sessionStorage.getItem('linli.refresh')")
    async with httpx.AsyncClient(timeout=30.0) as http:
        ended = await http.post(
            f"{hub.url}/oauth/revoke", data={"token": refresh, "client_id": "linli-web"}
        )
    assert ended.status_code == 200
    await expect(page.locator("#signin")).to_be_visible(timeout=WAIT_MS)
    # signing in again brings the form back as it was
    await page.click("#signin-button")
    await page.wait_for_url("**/oauth/authorize**", timeout=WAIT_MS)
    await page.fill("#username", "zhang.min")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    await expect(page.locator("#raise-panel")).to_be_visible()
    assert (
        await page.input_value("#raise-description")
        == "边坡裂缝 a crack, typed before the session ended"
    )
    assert await page.input_value("#raise-category") == "slope_instability"
    await page.click("#raise-form button[type=submit]")
    await expect(page.locator("#raise-result")).to_contain_text("RiskFlag:", timeout=WAIT_MS)
    rows = await rig.node_sql("SELECT category FROM risk_flags")
    assert [r[0] for r in rows] == ["slope_instability"]
    # signing out ends the session at the hub: its token is refused
    token = await session_token(page)
    await page.click("#sign-out")
    await page.wait_for_selector("body[data-signed-out=true]", timeout=WAIT_MS)
    await expect(page.locator("#signin")).to_be_visible()
    async with httpx.AsyncClient(timeout=30.0) as http:
        refused = await http.post(
            f"{hub.url}/graphql",
            json={"query": "{ flags { edges { node { id } } } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", refused.text
    # what the page logged: only the refusals the protocol answers with (the API's 401 for
    # the ended session's token, the token endpoint's 400 invalid_grant for its refresh token)
    assert [e for e in log.errors if not re.search(r"status of 40[01]", e)] == []
