"""Registering sources: URLs are checked, re-pointing is explicit and audited, details are private."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.app import MIGRATIONS
from hub.federation.client import SourceClient
from hub.federation.registry import Registry, SourceHealth
from schema.enums import OrgKind
from schema.runtime.db import Database
from schema.runtime.outbound import OutboundPolicy
from tests.conftest import DatabaseUnderTest, migrate
from tests.hub.federation.conftest import RunningHub
from tests.hub.federation.fake_source import FakeSource

StartHub = Callable[..., Any]
SourcesOf = Callable[..., dict[str, str]]

ADD = "mutation ($id: String!, $url: String!) { addSource(id: $id, url: $url) { id url status } }"
REPLACE = """mutation ($id: String!, $url: String!) {
  replaceSourceUrl(id: $id, url: $url) { id url status } }"""
SOURCES = "{ sources { id status url circuit lastError } }"
A, B = "110105001001", "110105001002"


async def count(hub: RunningHub, statement: str) -> int:
    db = Database(hub.db_url)
    try:
        async with db.sessions() as session:
            return int((await session.execute(sa.text(statement))).scalar_one())
    finally:
        await db.dispose()


async def stored_urls(hub: RunningHub) -> dict[str, str]:
    db = Database(hub.db_url)
    try:
        async with db.sessions() as session:
            rows = await session.execute(sa.text("SELECT id, url FROM sources"))
            return {row.id: row.url for row in rows}
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@127.0.0.1:9",
        "http://127.0.0.1:9/#x",
        "ftp://127.0.0.1/",
        "http://localhost:9",  # loopback too, but not in the allow-list below
    ],
)
async def test_add_source_refuses_urls_and_writes_nothing(
    start_hub: StartHub, sources: SourcesOf, url: str
) -> None:
    urls = sources(FakeSource(A))
    hub = await start_hub(urls, allowed_outbound_hosts=["127.0.0.1"])
    admin = await hub.graphql()
    assert await admin.error_code(ADD, {"id": B, "url": url}) == "URL_NOT_ALLOWED"
    assert await stored_urls(hub) == {A: urls[A]}
    assert [s["id"] for s in (await admin.data(SOURCES))["sources"]] == [A]
    # The same hub takes a URL that passes: the refusals above were the URL's.
    added = (await admin.data(ADD, {"id": B, "url": "http://127.0.0.1:9"}))["addSource"]
    assert added == {"id": B, "url": "http://127.0.0.1:9", "status": "down"}


async def test_add_source_refuses_an_existing_id(start_hub: StartHub, sources: SourcesOf) -> None:
    urls = sources(FakeSource(A))
    other = sources(FakeSource(A))[A]
    hub = await start_hub(urls)
    admin = await hub.graphql()
    assert await admin.error_code(ADD, {"id": A, "url": other}) == "SOURCE_EXISTS"
    assert await stored_urls(hub) == {A: urls[A]}
    assert [(s["id"], s["url"]) for s in (await admin.data(SOURCES))["sources"]] == [(A, urls[A])]
    assert await count(hub, "SELECT count(*) FROM audit_log") == 0


async def test_replace_source_url_is_for_admins_checked_and_audited(
    start_hub: StartHub, sources: SourcesOf
) -> None:
    urls = sources(FakeSource(A))
    moved = sources(FakeSource(A))[A]
    hub = await start_hub(urls)
    admin = await hub.graphql()
    department = await hub.graphql(scopes="resources:read")
    assert await department.error_code(REPLACE, {"id": A, "url": moved}) == "FORBIDDEN"
    assert await admin.error_code(REPLACE, {"id": B, "url": moved}) == "NOT_FOUND"
    bad = moved.replace("http://", "http://u:p@")
    assert await admin.error_code(REPLACE, {"id": A, "url": bad}) == "URL_NOT_ALLOWED"
    assert await stored_urls(hub) == {A: urls[A]}
    assert await count(hub, "SELECT count(*) FROM audit_log") == 0

    replaced = (await admin.data(REPLACE, {"id": A, "url": moved + "/"}))["replaceSourceUrl"]
    assert replaced == {"id": A, "url": moved, "status": "ok"}
    assert await stored_urls(hub) == {A: moved}
    db = Database(hub.db_url)
    try:
        async with db.sessions() as session:
            rows = (
                await session.execute(
                    sa.text("SELECT action, owner, client_id, org, decision FROM audit_log")
                )
            ).all()
    finally:
        await db.dispose()
    assert [(r.action, r.owner, r.org) for r in rows] == [("replace_source_url", A, "110105900001")]
    assert rows[0].client_id
    assert json.loads(rows[0].decision) == {"from": urls[A], "to": moved}


async def test_source_details_only_for_departments_and_admins(
    start_hub: StartHub, sources: SourcesOf
) -> None:
    urls = sources(FakeSource(A))
    hub = await start_hub({**urls, B: "http://127.0.0.1:9"})
    department = await hub.graphql(scopes="resources:read")
    community = await hub.graphql(org=A, kind=OrgKind.COMMUNITY, scopes="resources:read")
    public = await hub.graphql(org="public-app", kind=OrgKind.PUBLIC, scopes="resources:read")
    seen = {s["id"]: s for s in (await department.data(SOURCES))["sources"]}
    assert seen[A]["url"] == urls[A]
    assert seen[B]["url"] == "http://127.0.0.1:9"
    assert seen[B]["status"] == "down"
    assert seen[B]["lastError"]
    assert seen[A]["circuit"] == "closed"
    for caller in (community, public):
        listed = (await caller.data(SOURCES))["sources"]
        assert listed == [
            {"id": A, "status": "ok", "url": None, "circuit": None, "lastError": None},
            {"id": B, "status": "down", "url": None, "circuit": None, "lastError": None},
        ]


async def test_a_refused_url_in_the_sources_file_is_left_out_shown_and_not_written(
    fresh_database: DatabaseUnderTest, tmp_path: Path
) -> None:
    await migrate(MIGRATIONS, fresh_database.url)
    config = tmp_path / "sources.toml"
    config.write_text(
        f'[[sources]]\nid = "{A}"\nurl = "http://127.0.0.1:9"\n\n'
        f'[[sources]]\nid = "{B}"\nurl = "http://admin:secret@127.0.0.1:9"\n',
        "utf-8",
    )
    db = Database(fresh_database.url)
    policy = OutboundPolicy(allow_internal=True)
    client = SourceClient(outbound=policy)
    try:
        registry = Registry(db, client, config_file=config, outbound=policy)
        await registry.load()
        async with db.sessions() as session:
            stored = (await session.execute(sa.text("SELECT id FROM sources"))).scalars().all()
        assert stored == [A]
        refused = registry.sources[B]
        assert (refused.health, refused.usable) == (SourceHealth.NOT_ALLOWED, False)
        assert refused.last_error == "URL_NOT_ALLOWED: a URL must not carry a user name or password"
        assert registry.sources[A].usable
    finally:
        await client.aclose()
        await db.dispose()
