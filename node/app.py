"""The community node: a FastAPI app speaking the node protocol over its own database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import Response

from node.auth import StaticTokenAuthenticator
from node.context import NodeContext
from node.graphql import node_schema
from node.settings import NodeSettings
from policies.caller import Authenticator
from schema import SCHEMA_VERSION
from schema.errors import LinliError, Unauthenticated
from schema.runtime.db import Database
from schema.runtime.graphql import LinliGraphQLRouter
from schema.runtime.http import BodyLimitMiddleware, Metrics, error_body, health_router

__all__ = ["MIGRATIONS", "create_app"]

MIGRATIONS = Path(__file__).parent / "migrations"
CAPABILITIES = ["incidents", "resources", "shelters", "volunteers", "riskFlags", "alerts"]

log = logging.getLogger("linli.node")


def create_app(settings: NodeSettings, authenticator: Authenticator | None = None) -> Any:
    """The node's ASGI app (FastAPI wrapped in the body limit and metrics)."""
    db = Database(settings.database_url)
    auth = authenticator or StaticTokenAuthenticator(settings)
    metrics = Metrics("node")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not await db.at_head(MIGRATIONS):
            log.error("database is not at the newest migration: run `linli db upgrade node`")
        log.info(
            "node %s (%s) serving",
            settings.source_id,
            settings.org_name,
            extra={"environment": settings.environment.value},
        )
        yield
        await db.dispose()

    app = FastAPI(
        title=f"Linli node {settings.org_name}",
        lifespan=lifespan,
        docs_url=None if settings.production else "/docs",
        redoc_url=None,
        openapi_url=None if settings.production else "/openapi.json",
    )

    @app.exception_handler(LinliError)
    async def linli_error(_: Request, exc: LinliError) -> Response:
        status = 401 if isinstance(exc, Unauthenticated) else 400
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return Response(
            error_body(exc.extensions["code"], exc.message),
            status_code=status,
            media_type="application/json",
            headers=headers,
        )

    async def context(
        authorization: Annotated[str | None, Header()] = None,
    ) -> NodeContext:
        caller = await auth.authenticate(authorization)
        return NodeContext(db=db, settings=settings, caller=caller)

    graphql = LinliGraphQLRouter(
        node_schema(settings),
        context_getter=context,
        graphql_ide=None if settings.production else "graphiql",
        allow_queries_via_get=not settings.production,
    )
    app.include_router(graphql, prefix="/graphql")

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

    async def ready() -> dict[str, bool]:
        try:
            at_head = await db.at_head(MIGRATIONS)
            reachable = True
        except Exception:  # any database failure means "not ready"
            log.exception("readiness check failed")
            reachable = at_head = False
        return {"database": reachable, "migrations": at_head}

    app.include_router(health_router(ready, metrics))
    app.state.db = db
    app.state.settings = settings
    return BodyLimitMiddleware(metrics.middleware(app), limit=settings.max_body_bytes)
