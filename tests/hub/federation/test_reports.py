"""What each root field of a hub answer says: its sources' entries, or its own error."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.hub.federation.fake_source import FakeSource

S1, S2, S3 = "110105001001", "110105001002", "110105001003"
TWO_FIELDS = """query($a: String, $b: String) {
  few: resources(first: 3, after: $a) { edges { node { id owner } } pageInfo { hasNextPage endCursor } }
  many: resources(first: 20, after: $b) { edges { node { id owner } } pageInfo { hasNextPage endCursor } }
}"""


def entries_at(body: dict[str, Any], path: list[str]) -> dict[str, dict[str, Any]]:
    """The entries of one root field, by source; each source at most once."""
    entries = [e for e in body["extensions"]["sources"] if e["path"] == path]
    by_source = {e["source"]: e for e in entries}
    assert len(by_source) == len(entries), entries
    return by_source


async def test_each_field_names_every_planned_source_with_what_it_gave_until_the_end(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    fakes = [FakeSource(S1, count=2), FakeSource(S2, count=7), FakeSource(S3, behaviour="http500")]
    hub = await start_hub(sources(*fakes))
    client = await hub.graphql()
    after: str | None = None
    seen_done: set[str] = set()
    pages = 0
    while True:
        body = await client.post(TWO_FIELDS, {"a": after, "b": None})
        pages += 1
        assert {tuple(e["path"]) for e in body["extensions"]["sources"]} == {("few",), ("many",)}
        many = entries_at(body, ["many"])
        owners = Counter(e["node"]["owner"] for e in body["data"]["many"]["edges"])
        assert {s: e["count"] for s, e in many.items()} == {S1: 2, S2: 7, S3: 0}
        assert owners == Counter({S1: 2, S2: 7})
        few = entries_at(body, ["few"])
        assert set(few) == {S1, S2, S3}  # exhausted sources stay in the list
        owners = Counter(e["node"]["owner"] for e in body["data"]["few"]["edges"])
        assert {s: e["count"] for s, e in few.items()} == {s: owners[s] for s in (S1, S2, S3)}
        assert few[S3]["status"] in {"error", "unavailable"}
        assert not few[S3]["exhausted"]
        for source in seen_done:  # not asked again: ok, nothing, still exhausted
            assert few[source] | {"ms": 0} == {
                "path": ["few"], "source": source, "status": "ok", "ms": 0, "count": 0,
                "exhausted": True, "asOf": None,
            }  # fmt: skip
        seen_done |= {s for s, e in few.items() if e["exhausted"]}
        page = body["data"]["few"]["pageInfo"]
        if not page["hasNextPage"]:
            break
        after = page["endCursor"]
        assert pages < 10
    assert pages == 3  # 9 records, 3 a page
    assert seen_done == {S1, S2}
    # Each failed source is one error per field, at that field's path.
    failed = sorted((tuple(e["path"]), e["extensions"]["source"]) for e in body["errors"])
    assert failed == [(("few",), S3), (("many",), S3)]


async def test_a_field_the_caller_may_not_read_is_null_and_the_others_answer(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    hub = await start_hub(sources(FakeSource(S1, count=2)))
    client = await hub.graphql(scopes="resources:read")
    body = await client.post(
        "{ resources { edges { node { owner } } } shelters { edges { node { id } } } "
        "flags { edges { node { id } } } }"
    )
    assert body["data"]["shelters"] is None
    assert body["data"]["flags"] is None  # the hub's own fields alike
    assert [e["node"]["owner"] for e in body["data"]["resources"]["edges"]] == [S1, S1]
    errors = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert errors == {("shelters",): "FORBIDDEN", ("flags",): "FORBIDDEN"}
    shelters = next(e for e in body["errors"] if e["path"] == ["shelters"])
    assert shelters["extensions"] == {"code": "FORBIDDEN", "scope": "shelters:read"}
    # Nothing was asked of any source for the refused field.
    assert [(e["path"], e["source"]) for e in body["extensions"]["sources"]] == [
        (["resources"], S1)
    ]
