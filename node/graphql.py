"""The node's GraphQL schema: the common read API over its own data, plus staff mutations."""

from __future__ import annotations

from typing import Any

import strawberry

from node import disclosures, emergency
from node.settings import NodeSettings
from policies.enforce import PolicyExtension
from schema.codes import RESOURCE_KINDS, RISK_CATEGORIES
from schema.runtime.graphql import build_schema, root_type
from schema.store.resolvers import mutation_fields, node_field, query_fields
from schema.store.specs import RecordSpec

__all__ = ["node_schema"]


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


def node_schema(
    settings: NodeSettings,
    specs: dict[str, RecordSpec],
    *,
    extra_queries: dict[str, Any] | None = None,
) -> strawberry.Schema:
    """The schema with the settings' limits and hardening, enforcing the owner's policy."""
    query = root_type(
        "Query",
        {
            **query_fields(specs),
            "node": node_field(specs),
            "resource_kinds": strawberry.field(
                resolver=_resource_kinds, description="The resource-kind code list"
            ),
            "risk_categories": strawberry.field(
                resolver=_risk_categories, description="The risk-category code list"
            ),
            **emergency.query_fields(),
            **disclosures.query_fields(),
            **(extra_queries or {}),
        },
    )
    mutation = root_type("Mutation", {**mutation_fields(specs), **emergency.mutation_fields()})
    return build_schema(
        query=query, mutation=mutation, settings=settings, extensions=[PolicyExtension]
    )
