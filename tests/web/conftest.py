"""Browser tests: Playwright driving Debian's Chromium (``/usr/bin/chromium``), never a download.

``demo`` runs ``linli demo`` (a hub, three community nodes and the CAP adapter, each a
real process) once for the package (every module here shares the running district); ``browser`` is one headless Chromium.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import free_port
from tests.test_demo import REPO, _Output, _taken

CHROMIUM = Path(os.environ.get("LINLI_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WAIT_MS = 30_000  # generous: a loaded machine is slow, and nothing here asserts a duration


@dataclass
class Demo:
    """The running demo district: its state file and its output."""

    state: dict[str, Any]
    output: _Output

    @property
    def hub(self) -> str:
        return str(self.state["hub"]["url"])

    def token(self, client_id: str, resource: str | None = None) -> str:
        """A fresh access token for a demo client, from the hub's token endpoint."""
        form = {"grant_type": "client_credentials"}
        if resource:
            form["resource"] = resource
        response = httpx.post(
            f"{self.hub}/oauth/token",
            data=form,
            auth=(client_id, self.state["secrets"][client_id]),
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def graphql(self, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        return httpx.post(
            f"{self.hub}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``linli demo`` on free ports, ready (every source ok, seeded flags at the office)."""
    folder = tmp_path_factory.mktemp("demo")
    base = free_port()
    while any(_taken(base + i) for i in range(1, 5)):
        base = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "demo", "--port", str(base), "--data-dir", str(folder)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "400"}, start_new_session=True,
    )  # fmt: skip
    output = _Output(process)
    try:
        output.wait_for(r"Press Ctrl-C to stop\.", timeout=300)
        yield Demo(json.loads((folder / "demo.json").read_text("utf-8")), output)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _chromium() -> str:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    return str(CHROMIUM)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; skipped nowhere: CI installs it (``.ci/run``)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class PageLog:
    """What a page said on its console and what failed on it."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))


async def open_app(
    browser: Browser,
    hub: str,
    token: str,
    *,
    query: str = "?refresh=1",
    viewport: tuple[int, int] = (1920, 1080),
    bypass_csp: bool = False,
) -> tuple[Page, PageLog]:
    """A new browser context (its own session) on the application, signed in with ``token``."""
    context = await browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]},
        locale="zh-CN",
        bypass_csp=bypass_csp,
    )
    page = await context.new_page()
    log = PageLog(page)
    await page.goto(f"{hub}/app/{query}#token={token}")
    await page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    return page, log


async def sign_in(
    browser: Browser,
    hub: str,
    username: str,
    password: str,
    *,
    query: str = "?refresh=1",
    viewport: tuple[int, int] = (1920, 1080),
    bypass_csp: bool = False,
) -> tuple[Page, PageLog]:
    """A person opens the application in a new browser context and signs in at the hub.

    The page sends the browser to the hub's authorization endpoint (code + PKCE, S256),
    the person types a password on the hub's sign-in page, and the page finishes at its
    redirect URI with the code exchange.
    """
    context = await browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]},
        locale="zh-CN",
        bypass_csp=bypass_csp,
    )
    page = await context.new_page()
    log = PageLog(page)
    await page.goto(f"{hub}/app/{query}")
    await page.wait_for_url("**/oauth/authorize**", timeout=WAIT_MS)
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    return page, log


async def session_token(page: Page) -> str:
    """The access token the page holds now."""
    token: str = await page.evaluate("sessionStorage.getItem('linli.token')")
    return token


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
