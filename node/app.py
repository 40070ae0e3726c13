"""The community node: a FastAPI app speaking the node protocol over its own database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Header

from node.auth import node_authenticator
from node.context import NodeContext
from node.flags import create_flags
from node.graphql import node_schema
from node.settings import NodeSettings, check_authentication
from node.tables import FLAGS, TABLES
from policies.caller import Authenticator
from policies.enforce import PURPOSE_HEADER, PolicyEnforcer, purpose_from_header
from policies.engine import Owner
from schema import SCHEMA_VERSION
from schema.enums import OrgKind
from schema.runtime.db import Database
from schema.runtime.service import graphql_router, service_app, wrap
from schema.store.specs import bind_specs

__all__ = ["MIGRATIONS", "create_app", "node_owner"]

MIGRATIONS = Path(__file__).parent / "migrations"


def node_owner(settings: NodeSettings) -> Owner:
    """The community whose data the node serves, as its policies see it."""
    return Owner(
        org=settings.org_code,
        kind=OrgKind.COMMUNITY,
        district=settings.district,
        neighbours=frozenset(settings.neighbours),
    )


def create_app(settings: NodeSettings, authenticator: Authenticator | None = None) -> Any:
    """The node's ASGI app; refuses to build with unsafe settings or an invalid policy file."""
    # Settings changed after validation (model_copy) are checked again here.
    check_authentication(settings)
    enforcer = PolicyEnforcer.load(node_owner(settings), settings.policy_file)
    db = Database(settings.database_url)
    http = httpx.AsyncClient()
    auth = authenticator or node_authenticator(settings, http)

    @asynccontextmanager
    async def http_client() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    specs = bind_specs(TABLES)
    flags = create_flags(settings, db, FLAGS, specs["RiskFlag"], http)
    app = service_app(
        name="node",
        title=f"Linli node {settings.source_id} {settings.org_name}",
        settings=settings,
        db=db,
        migrations=MIGRATIONS,
        lifecycles=[http_client, flags.lifecycle],  # the worker stops before the client closes
    )
    flags.metrics.register(app.state.metrics.registry)
    app.state.flags = flags
    app.include_router(flags.router(auth.authenticate))

    async def context(
        authorization: Annotated[str | None, Header()] = None,
        purpose: Annotated[str | None, Header(alias=PURPOSE_HEADER)] = None,
    ) -> NodeContext:
        caller = await auth.authenticate(authorization)
        return NodeContext(
            db=db,
            settings=settings,
            caller=caller,
            enforcer=enforcer,
            purpose=purpose_from_header(purpose),
            record_hooks=flags.record_hooks,
        )

    schema = node_schema(settings, specs, extra_queries=flags.query_fields())
    app.include_router(graphql_router(schema, context, settings), prefix="/graphql")

    @app.get("/.well-known/linli-node")
    async def well_known() -> dict[str, Any]:
        return {
            "id": settings.source_id,
            "kind": "community",
            "name": settings.org_name,
            "division_code": settings.org_code,
            "district": settings.district,
            "neighbours": settings.neighbours,
            "bbox": settings.bbox.model_dump() if settings.bbox else None,
            "schema_version": SCHEMA_VERSION,
            "capabilities": [spec.field_name for spec in specs.values()],
        }

    return wrap(app, settings)
