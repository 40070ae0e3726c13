"""The district picture in a real browser, on the running demo district.

The demo's people sign in at the hub (authorization code + PKCE). A duty officer of the
emergency office sees features from all three community nodes and the CAP adapter;
community staff raise a flag by clicking the map in a second browser context; the
officer acknowledges it and the community's page shows the change; a dropped
subscription resumes from its sequence number; the wall screen shows the map read-only;
a killed node's features turn stale and come back. axe-core finds no serious violation.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.conftest import WAIT_MS, Demo, axe_violations, session_token, sign_in

pytestmark = pytest.mark.slow

NODES = ["110105001001", "110105001002", "110105001003"]
OFFICE = "110105400001"
STAFF = "110105001003"  # 建国里: its staff raise the flag
KILLED = "110105001001"  # it holds an incident, which the hub never serves stale


def person(demo: Demo, username: str) -> tuple[str, str]:
    """A demo person's username and password (from demo.json)."""
    found = next(p for p in demo.state["people"] if p["username"] == username)
    return found["username"], found["password"]


SCREENSHOT = os.environ.get("LINLI_SCREENSHOT")  # e.g. docs/map.png: where to keep the map


async def test_a_duty_officer_sees_the_whole_district(
    demo: Demo, browser: Browser, tmp_path: Path
) -> None:
    page, log = await sign_in(browser, demo.hub, *person(demo, "duty"))
    await expect(page.locator("#who")).to_contain_text("王芳")
    seeded = {node: ("resource", "shelter") for node in NODES}
    seeded[NODES[0]] += ("incident", "flag")
    seeded[NODES[1]] += ("flag",)
    seeded[NODES[2]] += ("incident",)
    for node, kinds in seeded.items():
        for kind in kinds:
            await expect(
                page.locator(f'.feature.{kind}[data-owner="{node}"]').first
            ).to_be_attached(timeout=WAIT_MS)
    await expect(page.locator('.feature.alert[data-owner="adapter-cap"]').first).to_be_attached()
    # the two seeded flags, routed to the office, with the time left to acknowledge them
    # (the demo's sensor simulator raises another one at 建国里 while the test runs)
    flags = page.locator("#flags li[data-status=ROUTED]")
    for node in NODES[:2]:
        await expect(flags.filter(has_text=node)).to_have_count(1, timeout=WAIT_MS)
    await expect(flags.first.locator(".deadline")).to_contain_text("剩余")
    await expect(flags.first.locator("button[data-to=ACKNOWLEDGED]")).to_be_visible()
    # every source answered, live
    for source in [*NODES, "adapter-cap"]:
        await expect(page.locator(f'#sources tr[data-source="{source}"]')).to_have_attribute(
            "data-status", "ok"
        )
    assert await page.locator("#alerts li[data-alert]").count() >= 1
    # clicking a feature shows exactly the fields the API returned for it
    shelter = page.locator(f'.feature.shelter[data-owner="{NODES[0]}"]').first
    await shelter.click()
    details = page.locator("#details")
    for field in ("id", "owner", "name", "capacity", "occupancy", "accessible"):
        await expect(details.locator("dt", has_text=re.compile(f"^{field}$"))).to_have_count(1)
    await expect(details).to_contain_text("永安里小学体育馆")
    # the keyboard reaches a feature and opens it too
    incident = page.locator(f'.feature.incident[data-owner="{NODES[2]}"]').first
    await incident.focus()
    await page.keyboard.press("Enter")
    await expect(details.locator("dt", has_text=re.compile("^title$"))).to_have_count(1)
    # Chinese by default; the switch turns the page to English and back
    assert await page.get_attribute("html", "lang") == "zh-CN"
    await page.click("#lang")
    await expect(page.locator("#flags-title")).to_contain_text("Risk flags")
    assert await page.get_attribute("html", "lang") == "en"
    await page.click("#lang")
    await expect(page.locator("#flags-title")).to_contain_text("风险上报")
    await page.screenshot(path=SCREENSHOT or str(tmp_path / "map.png"))
    assert await axe_violations(await _axe_page(browser, demo)) == []
    assert log.errors == [], log.errors  # nothing refused by the page's CSP, nothing thrown


async def _axe_page(browser: Browser, demo: Demo) -> Page:
    # axe is injected as a script, which the application's CSP rightly refuses: its own context
    page, _ = await sign_in(browser, demo.hub, *person(demo, "duty"), bypass_csp=True)
    await expect(page.locator(".feature.resource").first).to_be_attached(timeout=WAIT_MS)
    return page


async def test_staff_raise_a_flag_on_the_map_and_see_the_office_acknowledge_it(
    demo: Demo, browser: Browser
) -> None:
    office, _ = await sign_in(browser, demo.hub, *person(demo, "duty"))
    staff, staff_log = await sign_in(browser, demo.hub, *person(demo, "staff"))
    await expect(staff.locator("#live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    await expect(office.locator("#live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    # staff see no workflow buttons; the officer sees no raise button
    await expect(office.locator("#raise-mode")).to_be_hidden()
    await staff.click("#raise-mode")
    area = staff.locator(f'.feature.community[data-owner="{STAFF}"] rect')
    box = await area.bounding_box()
    assert box is not None
    await staff.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)
    await expect(staff.locator("#raise-panel")).to_be_visible()
    await staff.select_option("#raise-category", "gas_leak")
    await staff.fill("#raise-description", "浏览器测试：3号楼燃气味 Gas smell at building 3")
    await staff.select_option("#raise-severity", "III")
    await staff.click("#raise-form button[type=submit]")
    await expect(staff.locator("#raise-result")).to_contain_text("RiskFlag:", timeout=WAIT_MS)
    flag_id = (await staff.inner_text("#raise-result")).split(": ", 1)[1].strip()
    # the flag reaches the office through its node, the hub's inbox and the subscription
    row = office.locator(f'#flags li[data-flag="{flag_id}"]')
    await expect(row).to_have_attribute("data-status", "ROUTED", timeout=WAIT_MS)
    await expect(office.locator(f'.feature.flag[data-id="{flag_id}"]')).to_be_attached()
    mine = staff.locator(f'#flags li[data-flag="{flag_id}"]')
    await expect(mine).to_have_attribute("data-status", "ROUTED", timeout=WAIT_MS)
    assert await mine.locator("button").count() == 0  # staff do not move flags
    await row.locator("input").fill("值班员已派人 on our way")
    await row.locator("button[data-to=ACKNOWLEDGED]").click()
    started = time.perf_counter()
    await expect(mine).to_have_attribute("data-status", "ACKNOWLEDGED", timeout=WAIT_MS)
    print(
        f"acknowledged in one context -> shown in the other: {time.perf_counter() - started:.3f} s"
    )
    await expect(staff.locator(f'.feature.flag[data-id="{flag_id}"]')).to_have_attribute(
        "data-status", "ACKNOWLEDGED"
    )
    # the hub recorded the step with the note, by the person, through the web app's client
    body = demo.graphql(
        demo.state["roles"]["department"]["token"],
        "query ($id: ID!) { flag(id: $id) { status transitions"
        " { status org clientId person note } } }",
        {"id": flag_id},
    )
    step = body["data"]["flag"]["transitions"][-1]
    assert step == {
        "status": "ACKNOWLEDGED", "org": OFFICE, "clientId": "linli-web", "person": "duty",
        "note": "值班员已派人 on our way",
    }  # fmt: skip
    assert staff_log.errors == []


async def test_a_dropped_subscription_resumes_from_its_sequence_number(
    demo: Demo, browser: Browser
) -> None:
    office_token = demo.state["roles"]["department"]["token"]
    page, _ = await sign_in(browser, demo.hub, *person(demo, "duty"))
    await expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    listed = demo.graphql(
        office_token, "{ flags(status: ROUTED) { edges { node { id version } } } }"
    )
    flag = listed["data"]["flags"]["edges"][0]["node"]
    row = page.locator(f'#flags li[data-flag="{flag["id"]}"]')
    move = (
        "mutation ($id: ID!, $to: RiskFlagStatus!, $v: Int!) { transitionFlag(id: $id, to: $to,"
        " expectedVersion: $v) { status version } }"
    )
    moved = demo.graphql(
        office_token, move, {"id": flag["id"], "to": "ACKNOWLEDGED", "v": flag["version"]}
    )
    await expect(row).to_have_attribute("data-status", "ACKNOWLEDGED", timeout=WAIT_MS)
    seen = await page.evaluate("window.linliFlagEvents.lastSeq")
    assert isinstance(seen, int)
    # the socket drops (reconnecting in 3 s); while it is down, the flag moves again
    await page.evaluate("() => { const e = window.linliFlagEvents; e.delay = 3000; e.drop(); }")
    await expect(page.locator("#live")).not_to_have_attribute("data-state", "live")
    version = moved["data"]["transitionFlag"]["version"]
    moved = demo.graphql(office_token, move, {"id": flag["id"], "to": "VERIFYING", "v": version})
    assert moved["data"]["transitionFlag"]["status"] == "VERIFYING", moved
    # reconnected, it asks for the events after the last one it saw, and gets the missed one
    await expect(row).to_have_attribute("data-status", "VERIFYING", timeout=WAIT_MS)
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    resumed = await page.evaluate("window.linliFlagEvents.subscribedAfter")
    assert resumed[-1] == seen, resumed
    assert await page.evaluate("window.linliFlagEvents.lastSeq") > seen


async def test_the_wall_screen_shows_the_map_read_only(demo: Demo, browser: Browser) -> None:
    page, log = await sign_in(
        browser, demo.hub, *person(demo, "wall-screen"), query="?wall=1&refresh=1"
    )
    viewer = await session_token(page)  # 指挥中心大屏: a viewer, read scopes only
    assert "wall" in (await page.get_attribute("body", "class") or "")
    for node in NODES:
        await expect(page.locator(f'.feature[data-owner="{node}"]').first).to_be_attached(
            timeout=WAIT_MS
        )
    await expect(page.locator("#map svg")).to_be_visible()
    assert (
        await page.locator(".workflow button, #raise-mode:visible, #sign-out:visible").count() == 0
    )
    # a viewer pressing a workflow button: there is none, and the API refuses the move anyway
    office_token = demo.state["roles"]["department"]["token"]
    flag = demo.graphql(office_token, "{ flags(first: 1) { edges { node { id version } } } }")
    node = flag["data"]["flags"]["edges"][0]["node"]
    refused = demo.graphql(
        viewer,
        "mutation ($id: ID!, $v: Int!) { transitionFlag(id: $id, to: VERIFYING,"
        " expectedVersion: $v) { status } }",
        {"id": node["id"], "v": node["version"]},
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused
    assert log.errors == []


async def test_a_phone_reads_the_page_without_scrolling_sideways(
    demo: Demo, browser: Browser
) -> None:
    page, _ = await sign_in(browser, demo.hub, *person(demo, "staff"), viewport=(390, 844))
    await expect(page.locator(".feature.resource").first).to_be_attached(timeout=WAIT_MS)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    map_box = await page.locator("#map svg").bounding_box()
    assert map_box is not None
    assert map_box["width"] >= 350


async def test_a_killed_node_turns_stale_on_the_page_and_comes_back(
    demo: Demo, browser: Browser
) -> None:
    page, _ = await sign_in(browser, demo.hub, *person(demo, "duty"))
    mine = page.locator(f'.feature[data-owner="{KILLED}"]')
    await expect(mine.first).to_be_attached(timeout=WAIT_MS)
    before = await mine.count()
    pid = int(demo.output.wait_for(rf"starting node {KILLED} .* \(pid (\d+)\)", 1).group(1))
    os.kill(pid, signal.SIGKILL)
    # its resources, shelters and incidents stay on the map, marked stale with their time
    stale = page.locator(f'.feature.resource[data-owner="{KILLED}"][data-stale=true]')
    await expect(stale.first).to_be_attached(timeout=WAIT_MS)
    assert await mine.count() == before  # nothing disappeared
    await expect(
        page.locator(f'.feature.incident[data-owner="{KILLED}"][data-stale=true]').first
    ).to_be_attached()
    await stale.first.click()
    await expect(page.locator("#details .stale-note")).to_contain_text("截至")
    await expect(page.locator(f'#sources tr[data-source="{KILLED}"] td').nth(3)).to_contain_text(
        "截至"
    )
    # the demo restarts the node; its features are live again
    await expect(
        page.locator(f'.feature.resource[data-owner="{KILLED}"][data-stale=false]').first
    ).to_be_attached(timeout=90_000)
