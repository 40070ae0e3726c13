"""GraphiQL at a node and the hub: a page anyone may open, served whole by the service itself.

The page and every script and style it links load without a token and from the
service (no CDN); the API behind it still refuses a query without a token. In a
headless Chromium (when installed), the page opened as ``/graphql#token=...``
loads the schema's docs with that token, and without it does not.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from hub.app import create_app as create_hub
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from schema.runtime.graphiql import ASSETS
from tests.conftest import DatabaseUnderTest, ServerThread, free_port, migrate
from tests.hub.auth.conftest import hub_settings
from tests.node.conftest import STAFF_TOKEN, node_settings

HTML = {"Accept": "text/html,application/xhtml+xml"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Links(HTMLParser):
    """Every URL a page makes the browser load: script sources and stylesheet links."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.loaded.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.loaded.append(str(found["href"]))


def _linked(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    return parser.loaded


@pytest.fixture(params=["node", "hub"])
async def service(
    request: pytest.FixtureRequest,
    fresh_database: DatabaseUnderTest,
    serve: Callable[..., ServerThread],
) -> str:
    """A node or a hub in development mode; its base URL."""
    if request.param == "node":
        await migrate(NODE_MIGRATIONS, fresh_database.url)
        return serve(create_node(node_settings(fresh_database.url))).url
    await migrate(HUB_MIGRATIONS, fresh_database.url)
    port = free_port()
    return serve(create_hub(hub_settings(fresh_database.url, port)), port).url


def _refused_for_no_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    extensions = response.json()["errors"][0]["extensions"]
    assert (extensions["code"], extensions["reason"]) == ("UNAUTHENTICATED", "TOKEN_MISSING")


async def test_the_page_and_its_assets_load_without_a_token_from_the_service(
    service: str,
) -> None:
    async with httpx.AsyncClient(base_url=service, timeout=30.0) as http:
        page = await http.get("/graphql", headers=HTML)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "GraphiQL" in page.text
        linked = _linked(page.text)
        # React, ReactDOM, GraphiQL's script and its stylesheet.
        assert len(linked) == 4, linked
        kinds = []
        for link in linked:
            url = urljoin(str(page.url), link)
            assert urlsplit(url).netloc == urlsplit(service).netloc, url
            asset = await http.get(url)
            assert asset.status_code == 200, url
            assert asset.content == (ASSETS / Path(urlsplit(url).path).name).read_bytes()
            kinds.append(asset.headers["content-type"].split(";")[0])
        assert sorted(kinds) == ["text/css", *(["text/javascript"] * 3)]
        # Nothing in the page points at another host.
        for url in re.findall(r"""https?://[^\s"'`<>)]+""", page.text):
            assert urlsplit(url).netloc == urlsplit(service).netloc, url
        # The licences travel with the builds.
        for licence in ("LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"):
            assert (await http.get(f"/graphiql/{licence}")).status_code == 200


async def test_the_api_behind_the_page_still_needs_a_token(service: str) -> None:
    async with httpx.AsyncClient(base_url=service, timeout=30.0) as http:
        _refused_for_no_token(await http.post("/graphql", json={"query": "{ __typename }"}))
        # A GET query, even from a browser, is a query, not the page.
        _refused_for_no_token(
            await http.get("/graphql", params={"query": "{ __typename }"}, headers=HTML)
        )


def _rendered(url: str, profile: Path) -> str:
    """The DOM Chromium holds after loading ``url`` and running its scripts."""
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")
async def test_a_browser_opens_the_page_with_the_token_from_the_fragment(
    fresh_database: DatabaseUnderTest, serve: Callable[..., Any], tmp_path: Path
) -> None:
    await migrate(NODE_MIGRATIONS, fresh_database.url)
    node = serve(create_node(node_settings(fresh_database.url)))
    with_token = await asyncio.to_thread(
        _rendered, f"{node.url}/graphql#token={STAFF_TOKEN}", tmp_path / "a"
    )
    # The docs explorer lists the schema's root types once the introspection answered.
    assert "Root Types" in with_token, with_token[-2000:]
    assert "IncidentConnection" in with_token  # a type of this node's schema
    without = await asyncio.to_thread(_rendered, f"{node.url}/graphql", tmp_path / "b")
    assert "graphiql-container" in without  # the page ran
    assert "Root Types" not in without
