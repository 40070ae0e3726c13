"""The community node: a FastAPI app speaking the node protocol over its own database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Header

from node.auth import StaticTokenAuthenticator
from node.context import NodeContext
from node.graphql import node_schema
from node.settings import NodeSettings
from node.tables import TABLES
from policies.caller import Authenticator
from schema import SCHEMA_VERSION
from schema.runtime.db import Database
from schema.runtime.service import graphql_router, service_app, wrap
from schema.store.specs import bind_specs

__all__ = ["CAPABILITIES", "MIGRATIONS", "create_app"]

MIGRATIONS = Path(__file__).parent / "migrations"
CAPABILITIES = ["incidents", "resources", "shelters", "volunteers", "riskFlags", "alerts"]


def create_app(settings: NodeSettings, authenticator: Authenticator | None = None) -> Any:
    """The node's ASGI app."""
    db = Database(settings.database_url)
    auth = authenticator or StaticTokenAuthenticator(settings)
    app = service_app(
        name="node",
        title=f"Linli node {settings.source_id} {settings.org_name}",
        settings=settings,
        db=db,
        migrations=MIGRATIONS,
    )

    async def context(authorization: Annotated[str | None, Header()] = None) -> NodeContext:
        caller = await auth.authenticate(authorization)
        return NodeContext(db=db, settings=settings, caller=caller)

    schema = node_schema(settings, bind_specs(TABLES))
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
            "capabilities": CAPABILITIES,
        }

    return wrap(app, settings)
