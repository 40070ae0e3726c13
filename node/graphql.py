"""The node's GraphQL fields: the common read API over its own data, plus staff mutations.

The schema is built by ``policies.source.create_source``, which adds emergency mode,
the audit log and policy enforcement.
"""

from __future__ import annotations

from typing import Any

import strawberry

from schema.codes import RESOURCE_KINDS, RISK_CATEGORIES
from schema.store.aggregates import AGGREGATES_FIELD, aggregates_field
from schema.store.resolvers import node_field, query_fields
from schema.store.specs import RecordSpec

__all__ = ["node_queries"]


@strawberry.type(description="An entry of a code list")
class Code:
    code: str
    name_zh: str
    name_en: str
    group: str | None = strawberry.field(
        default=None, description="GB/T 38565-2020 first-level class, or GB/T 35561 class"
    )


async def _resource_kinds() -> list[Code]:
    return [
        Code(code=k.code, name_zh=k.name_zh, name_en=k.name_en, group=k.supply_class.value)
        for k in RESOURCE_KINDS.values()
    ]


async def _risk_categories() -> list[Code]:
    return [
        Code(code=r.code, name_zh=r.name_zh, name_en=r.name_en, group=r.incident_category)
        for r in RISK_CATEGORIES.values()
    ]


def node_queries(
    specs: dict[str, RecordSpec], extra: dict[str, Any] | None = None
) -> dict[str, object]:
    """The node's own query fields: its records, ``node`` and the code lists."""
    return {
        **query_fields(specs),
        "node": node_field(specs),
        "resource_kinds": strawberry.field(
            resolver=_resource_kinds, description="The resource-kind code list"
        ),
        "risk_categories": strawberry.field(
            resolver=_risk_categories, description="The risk-category code list"
        ),
        AGGREGATES_FIELD: aggregates_field(specs),
        **(extra or {}),
    }
