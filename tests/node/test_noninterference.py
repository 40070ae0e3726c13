"""Non-interference: what a caller receives depends only on what that caller may see.

Two nodes of the same community hold databases that differ only in what the
policy hides from a caller (``tests/noninterference.py`` builds them). For
random filters and page sizes, paging to the end, the caller gets
byte-identical answers from both: the same records, fields, cursors, page info
and errors. A filter can therefore never confirm a hidden value.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from node.app import MIGRATIONS, create_app
from node.settings import NodeSettings
from schema.enums import OrgKind
from tests.conftest import BACKENDS, ServerThread, _empty_database, migrate
from tests.node.conftest import NEIGHBOUR, ORG
from tests.node.issuer import TestIssuer
from tests.noninterference import CURSOR_SECRET, Query, fill, pages, queries


@dataclass
class Twins:
    urls: tuple[str, str]
    tokens: dict[str, str]


@pytest.fixture(scope="module", params=BACKENDS)
async def twins(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Twins]:
    issuer = TestIssuer()
    folder = tmp_path_factory.mktemp("twins")
    async with _empty_database(request.param, folder / "a") as a, \
            _empty_database(request.param, folder / "b") as b:  # fmt: skip
        servers = []
        for copy, database in enumerate((a, b)):
            await migrate(MIGRATIONS, database.url)
            await fill(database.url, copy, seed=20260720)
            node = NodeSettings(
                database_url=database.url, org_code=ORG, org_name="永安里社区",
                district="110105", neighbours=[NEIGHBOUR], token_issuer=issuer.issuer,
                jwks_url=issuer.jwks_url, cursor_secret=CURSOR_SECRET,
            )  # fmt: skip
            servers.append(ServerThread(create_app(node)).start())
        scope = "resources:read volunteers:read shelters:read"
        tokens = {
            "neighbour": issuer.mint(org=NEIGHBOUR, aud=ORG, scope=scope),
            "public": issuer.mint(
                org="public-web", aud=ORG, org_kind=OrgKind.PUBLIC.value, scope=scope,
                district=None,
            ),
        }  # fmt: skip
        try:
            yield Twins((servers[0].url, servers[1].url), tokens)
        finally:
            for server in servers:
                await asyncio.to_thread(server.stop)
            issuer.stop()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=queries)
async def test_answers_do_not_depend_on_what_the_caller_may_not_see(
    twins: Twins, query: Query
) -> None:
    token = twins.tokens[query[-1]]
    one = await pages(twins.urls[0], token, query)
    other = await pages(twins.urls[1], token, query)
    assert one == other


async def test_the_twins_do_differ_and_the_caller_does_see_records(twins: Twins) -> None:
    # The property above is not vacuous: the copies differ, and callers see something.
    document = "{ resources(first: 500) { edges { node { id address } } } }"
    owner = {}
    for url in twins.urls:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            body = (
                await http.post(
                    "/graphql",
                    json={"query": document},
                    headers={"Authorization": f"Bearer {twins.tokens['neighbour']}"},
                )
            ).json()
        owner[url] = [e["node"] for e in body["data"]["resources"]["edges"]]
    a, b = owner.values()
    assert len(a) == len(b) > 5  # the shared resources
    assert all(node["address"] is None for node in a)  # addresses are hidden from neighbours
