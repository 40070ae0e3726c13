"""The GraphQL runtime every service mounts: documents are parsed and validated once."""

from __future__ import annotations

import strawberry
from strawberry.extensions.validation_cache import _get_validate_cache

from schema.runtime.graphql import VALIDATION_CACHE_SIZE, build_schema, root_type
from schema.runtime.settings import ServiceSettings


@strawberry.type
class Box:
    inner: Box | None = None
    label: str = "箱"


async def _box() -> Box:
    return Box(inner=Box(inner=Box()))


def _schema(**settings: int) -> strawberry.Schema:
    query = root_type("Query", {"box": strawberry.field(resolver=_box)})
    return build_schema(query=query, settings=ServiceSettings(**settings))  # type: ignore[arg-type]


async def test_a_repeated_document_is_validated_once_per_process() -> None:
    schema = _schema()
    other_schema_same_settings = _schema()
    cache = _get_validate_cache(VALIDATION_CACHE_SIZE)
    document = "{ box { label inner { label } } }"
    first = await schema.execute(document)
    assert first.errors is None
    before = cache.cache_info()
    for _ in range(3):
        assert (await schema.execute(document)).errors is None
    assert (await other_schema_same_settings.execute(document)).errors is None
    after = cache.cache_info()
    assert after.misses - before.misses == 1  # the other schema: its own key, validated once
    assert after.hits - before.hits == 3


async def test_the_limits_still_apply_from_the_cache() -> None:
    schema = _schema(max_query_depth=2, max_aliases=2)
    deep = "{ box { inner { inner { label } } } }"
    for _ in range(2):  # validated, then answered from the cache: the same refusal
        result = await schema.execute(deep)
        assert result.errors is not None
        assert "exceeds maximum operation depth" in result.errors[0].message
    aliased = "{ a: box { label } b: box { label } c: box { label } }"
    result = await schema.execute(aliased)
    assert result.errors is not None
    assert "aliases found" in result.errors[0].message
