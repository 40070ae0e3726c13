"""Source URLs are checked when they are called, not only when they were registered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from schema.enums import OrgKind
from schema.runtime.settings import Environment
from tests.hub.federation.conftest import wait_sources_ok
from tests.hub.federation.fake_source import FakeSource

StartHub = Callable[..., Any]
SourcesOf = Callable[..., dict[str, str]]

A, B = "110105001001", "110105001002"
RESOURCES = "{ resources(first: 10) { edges { node { id } } } }"
SOURCES = "{ sources { id status url circuit lastError } }"
ADD = "mutation ($id: String!, $url: String!) { addSource(id: $id, url: $url) { id status } }"
REPLACE = """mutation ($id: String!, $url: String!) {
  replaceSourceUrl(id: $id, url: $url) { id url status } }"""


def reports(body: dict[str, Any]) -> dict[str, str]:
    return {entry["source"]: entry["status"] for entry in body["extensions"]["sources"]}


def codes(body: dict[str, Any]) -> dict[str, str]:
    return {e["extensions"]["source"]: e["extensions"]["code"] for e in body.get("errors", [])}


async def test_a_name_that_resolves_to_loopback_is_refused_at_each_call_in_production(
    start_hub: StartHub, sources: SourcesOf
) -> None:
    a, b = FakeSource(A), FakeSource(B)
    urls = sources(a, b)
    by_name = urls[A].replace("127.0.0.1", "localhost")
    # Registered and described while its name was allowed (here: in development), ...
    first = await start_hub({A: by_name})
    await wait_sources_ok(await first.graphql(), 1)
    await first.stop()
    calls = a.calls
    # ... the same name now resolves where it may not go. It still passes the checks that
    # need no resolution (a name, no allow-list), so it is loaded, and refused when called.
    hub = await start_hub({A: by_name, B: urls[B]}, environment=Environment.PRODUCTION)
    admin = await hub.graphql()
    for _ in range(4):  # more than the breaker's threshold: a refusal is no failure of A
        body = await admin.post(RESOURCES)
        assert reports(body) == {A: "refused"}  # B (a literal loopback address) is left out
        assert codes(body) == {A: "URL_NOT_ALLOWED"}
        # Which host and address were refused is for departments and admins (lastError).
        assert body["errors"][0]["message"] == (
            f"source {A}: URL_NOT_ALLOWED: the hub's outbound rules refuse the source's address"
        )
    listed = {s["id"]: s for s in (await admin.data(SOURCES))["sources"]}
    assert listed[A]["status"] == "down"  # its health check was refused the same way
    assert listed[A]["lastError"].startswith(
        "URL_NOT_ALLOWED: the host localhost is a loopback, link-local or private address ("
    )
    assert "127.0.0.1" in listed[A]["lastError"]
    assert listed[A]["circuit"] == "closed"
    assert listed[B]["status"] == "not_allowed"
    assert (a.calls, b.calls) == (calls, 0)  # no request reached either


async def test_stored_sources_that_fail_the_check_now_are_left_out_logged_and_shown(
    start_hub: StartHub, sources: SourcesOf, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = FakeSource(A), FakeSource(B)
    urls = sources(a, b)
    first = await start_hub({})
    admin = await first.graphql()
    for source_id in (A, B):
        added = (await admin.data(ADD, {"id": source_id, "url": urls[source_id]}))["addSource"]
        assert added == {"id": source_id, "status": "ok"}
    await first.stop()
    # The allow-list changes: B's stored URL (127.0.0.1) is not in it any more; A moves to
    # a listed name in the sources file, which wins over the database for its id.
    caplog.set_level(logging.ERROR, logger="linli.hub.sources")
    by_name = urls[A].replace("127.0.0.1", "localhost")
    hub = await start_hub({A: by_name}, allowed_outbound_hosts=["localhost"])
    assert [r.getMessage() for r in caplog.records if B in r.getMessage()] == [
        f"source {B} from the database is not federated: URL_NOT_ALLOWED:"
        " the host 127.0.0.1 is not in allowed_outbound_hosts"
    ]
    admin = await hub.graphql()
    calls = b.calls
    body = await admin.post(RESOURCES)
    assert reports(body) == {A: "ok"}
    assert "errors" not in body
    assert b.calls == calls  # not called, not even by the health checks
    listed = {s["id"]: s for s in (await admin.data(SOURCES))["sources"]}
    assert (listed[A]["status"], listed[A]["url"]) == ("ok", by_name)
    assert listed[B] == {
        "id": B,
        "status": "not_allowed",
        "url": urls[B],
        "circuit": "closed",
        "lastError": "URL_NOT_ALLOWED: the host 127.0.0.1 is not in allowed_outbound_hosts",
    }
    public = await hub.graphql(org="public-app", kind=OrgKind.PUBLIC, scopes="resources:read")
    assert {"id": B, "status": "not_allowed", "url": None, "circuit": None, "lastError": None} in (
        await public.data(SOURCES)
    )["sources"]
    # Replacing the URL with one that passes brings it back.
    moved = urls[B].replace("127.0.0.1", "localhost")
    replaced = (await admin.data(REPLACE, {"id": B, "url": moved}))["replaceSourceUrl"]
    assert replaced == {"id": B, "url": moved, "status": "ok"}
    assert reports(await admin.post(RESOURCES)) == {A: "ok", B: "ok"}
