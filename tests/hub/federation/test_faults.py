"""The hub answers with what it can and names every source that failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from schema.enums import OrgKind
from schema.runtime.wellknown import SourceKind, WellKnown
from tests.conftest import free_port
from tests.hub.federation.fake_source import FakeSource

RESOURCES = "{ resources(first: 50) { edges { cursor node { id name available } } pageInfo { hasNextPage endCursor } } }"


def by_source(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["source"]: entry for entry in body["extensions"]["sources"]}


async def test_each_failure_is_named_and_the_rest_answers(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    fakes = [
        FakeSource("110105001001"),
        FakeSource("110105001002", behaviour="hang"),
        FakeSource("110105001003", behaviour="invalid_json"),
        FakeSource("110105001004", behaviour="graphql_error"),
        FakeSource("110105001005", behaviour="wrong_type"),
        FakeSource("110105001006", behaviour="redirect"),
        FakeSource("110105001007", behaviour="http500"),
        FakeSource("110105001008", behaviour="slow", delay_s=0.2),
    ]
    urls = sources(*fakes)
    urls["110105001009"] = f"http://127.0.0.1:{free_port()}"  # nobody listens
    hub = await start_hub(urls, source_timeout_s=1.0, deadline_s=3.0)
    client = await hub.graphql()
    started = time.perf_counter()
    body = await client.post(RESOURCES)
    elapsed = time.perf_counter() - started
    reports = by_source(body)
    assert {k: v["status"] for k, v in reports.items()} == {
        "110105001001": "ok",
        "110105001002": "timeout",
        "110105001003": "error",
        "110105001004": "error",
        "110105001005": "error",
        "110105001006": "error",
        "110105001007": "error",
        "110105001008": "ok",
        "110105001009": "unavailable",
    }
    names = {edge["node"]["name"] for edge in body["data"]["resources"]["edges"]}
    assert names == {f"{s} 饮用水 {i}" for s in ("110105001001", "110105001008") for i in range(5)}
    failed = {e["extensions"]["source"]: e["extensions"]["code"] for e in body["errors"]}
    assert failed["110105001002"] == "SOURCE_TIMEOUT"
    assert failed["110105001009"] == "SOURCE_UNAVAILABLE"
    assert failed["110105001003"] == "SOURCE_ERROR"
    assert "redirected" in next(
        e["message"] for e in body["errors"] if e["extensions"]["source"] == "110105001006"
    )
    assert len(failed) == 7
    assert reports["110105001001"]["count"] == 5
    assert elapsed < 2.9  # the hanging source cost its timeout, not more (bounded by the deadline)


async def test_tokens_sent_to_sources_are_minted_per_source(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    a, b = FakeSource("110105001001"), FakeSource("110105001002")
    hub = await start_hub(sources(a, b))
    client = await hub.graphql(org="110105900001")
    await client.data(RESOURCES)
    caller_token = client.http.headers["authorization"].removeprefix("Bearer ")
    for fake in (a, b):
        sent = fake.tokens[-1].removeprefix("Bearer ")
        assert sent != caller_token  # never passed through
        claims = jwt.decode(sent, options={"verify_signature": False})
        header = jwt.get_unverified_header(sent)
        assert header["typ"] == "at+jwt"
        assert claims["aud"] == fake.source_id
        assert claims["org"] == "110105900001"
        assert claims["act"] == {"sub": hub.settings.hub_id}


async def test_oversized_answer_is_refused(start_hub: Callable[..., Any], sources: Any) -> None:
    hub = await start_hub(
        sources(FakeSource("110105001001"), FakeSource("110105001002", behaviour="huge"))
    )
    body = await (await hub.graphql()).post(RESOURCES)
    assert by_source(body)["110105001002"]["status"] == "error"
    assert "size cap" in next(e["message"] for e in body["errors"])
    assert len(body["data"]["resources"]["edges"]) == 5


async def test_circuit_opens_after_failures_and_closes_after_recovery(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    flaky = FakeSource("110105001002", behaviour="http500")
    hub = await start_hub(sources(FakeSource("110105001001"), flaky), breaker_cooldown_s=1.0)
    client = await hub.graphql()
    for _ in range(3):
        await client.post(RESOURCES)
    calls = flaky.calls
    body = await client.post(RESOURCES)
    assert by_source(body)["110105001002"]["status"] == "unavailable"
    assert flaky.calls == calls  # open: not even asked
    circuit = await client.data("{ sources { id circuit } }")
    assert {"id": "110105001002", "circuit": "open"} in circuit["sources"]
    flaky.behaviour = "ok"
    await asyncio.sleep(1.1)  # the breaker's cool-down
    body = await client.post(RESOURCES)
    assert by_source(body)["110105001002"]["status"] == "ok"
    circuit = await client.data("{ sources { id circuit } }")
    assert {"id": "110105001002", "circuit": "closed"} in circuit["sources"]


async def test_incompatible_schema_version_is_refused_not_half_used(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    old = FakeSource("110105001002", schema_version="0.3")
    hub = await start_hub(sources(FakeSource("110105001001"), old))
    client = await hub.graphql()
    listed = {
        s["id"]: s for s in (await client.data("{ sources { id status lastError } }"))["sources"]
    }
    assert listed["110105001002"]["status"] == "incompatible"
    assert "0.3" in listed["110105001002"]["lastError"]
    body = await client.post(RESOURCES)
    assert "110105001002" not in by_source(body)
    assert old.calls == 0


async def test_bad_requests_get_codes(start_hub: Callable[..., Any], sources: Any) -> None:
    hub = await start_hub(sources(FakeSource("110105001001")))
    client = await hub.graphql()
    assert (
        await client.error_code('{ resources(after: "Zm9yZ2Vk") { edges { cursor } } }')
        == "INVALID_CURSOR"
    )
    page = await client.data("{ resources(first: 2) { pageInfo { endCursor } } }")
    cursor = page["resources"]["pageInfo"]["endCursor"]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert (
        await client.error_code(
            "query($a: String) { resources(after: $a) { edges { cursor } } }", {"a": tampered}
        )
        == "INVALID_CURSOR"
    )
    other_filter = (
        'query($a: String) { resources(after: $a, where: {text: "x"}) { edges { cursor } } }'
    )
    assert await client.error_code(other_filter, {"a": cursor}) == "INVALID_CURSOR"
    assert (
        await client.error_code("{ resources(first: 501) { edges { cursor } } }")
        == "PAGE_SIZE_TOO_LARGE"
    )
    deep = "{ alerts { edges { node { infos { areas { geometry { coordinates } } } } } } }"
    assert "errors" not in await client.post(deep)
    aliases = "{ " + " ".join(f"a{i}: sources {{ id }}" for i in range(31)) + " }"
    assert await client.error_code(aliases) == "TOO_MANY_ALIASES"
    via_fragment = (
        "query { ...F } fragment F on Query { "
        + " ".join(f"a{i}: sources {{ id }}" for i in range(31))
        + " }"
    )
    assert await client.error_code(via_fragment) == "TOO_MANY_ALIASES"
    too_deep = "{ sources { id } " + "communities { neighbours } " + "}"
    assert "errors" not in await client.post(too_deep)
    response = await client.http.post("/graphql", json=[{"query": "{ sources { id } }"}] * 2)
    assert response.status_code == 400


async def test_scope_is_necessary(start_hub: Callable[..., Any], sources: Any) -> None:
    fake = FakeSource("110105001001")
    hub = await start_hub(sources(fake))
    client = await hub.graphql(scopes="shelters:read", kind=OrgKind.COMMUNITY, org="110105001002")
    assert await client.error_code(RESOURCES) == "FORBIDDEN"
    assert fake.calls == 0


async def test_mutations_need_post_and_json(start_hub: Callable[..., Any], sources: Any) -> None:
    hub = await start_hub(sources(FakeSource("110105001001")))
    client = await hub.graphql()
    mutation = 'mutation { removeSource(id: "110105001001") }'
    over_get = await client.http.get("/graphql", params={"query": mutation})
    assert over_get.status_code in (400, 405)
    as_text = await client.http.post(
        "/graphql", content=f'{{"query": "{mutation}"}}', headers={"content-type": "text/plain"}
    )
    assert as_text.status_code in (400, 415)
    listed = await client.data("{ sources { id } }")
    assert listed["sources"] == [{"id": "110105001001"}]  # nothing was removed


async def test_documents_over_the_depth_limit_are_refused(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    hub = await start_hub(sources(FakeSource("110105001001")), max_query_depth=3)
    client = await hub.graphql()
    deep = "{ resources { edges { node { location { coordinates } } } } }"
    assert await client.error_code(deep) == "QUERY_TOO_DEEP"
    assert "errors" not in await client.post("{ resources { edges { cursor } } }")


async def test_malformed_well_known_document_is_a_clear_error_on_that_source(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    malformed = FakeSource(
        "110105001002",
        described={"id": "110105001002", "kind": "village", "name": "x", "capabilities": "all"},
    )
    hub = await start_hub(sources(FakeSource("110105001001"), malformed))
    client = await hub.graphql()
    listed = {
        s["id"]: s for s in (await client.data("{ sources { id status lastError } }"))["sources"]
    }
    assert listed["110105001001"]["status"] == "ok"
    assert listed["110105001002"]["status"] == "incompatible"
    error = listed["110105001002"]["lastError"]
    assert error.startswith("malformed well-known document: ")
    assert "kind" in error
    assert "division_code" in error
    body = await client.post(RESOURCES)
    assert "110105001002" not in by_source(body)
    assert malformed.calls == 0

    # The hub's own document, as a source of a higher hub, is the same model.
    async with httpx.AsyncClient(base_url=hub.url, timeout=30.0) as http:
        document = WellKnown.model_validate((await http.get("/.well-known/linli-node")).json())
    assert document.kind is SourceKind.HUB
    assert document.id == hub.settings.hub_id
    assert "resources" in document.capabilities
