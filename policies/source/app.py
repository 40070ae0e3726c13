"""One way to build a source: the node protocol with the owner's policy enforced and audited.

A community node and an adapter service are both built by ``create_source``
from their well-known document, an authenticator and a context factory whose
``SourceContext`` carries the enforcer and the source's own emergency and audit
tables. Every read goes through the enforcer in the current mode, the reasons
go into ``extensions.policy`` and every disclosure into the audit log
(``PolicyExtension``); ``declareEmergency``, ``endEmergency``, ``emergencies``
and ``disclosures`` come with it. A hub starts from the same
``schema.runtime.service.service_app`` but federates its GraphQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Header

from policies.audit import AuditWriter
from policies.caller import Authenticator
from policies.enforce import PolicyEnforcer, PolicyExtension
from policies.purposes import PURPOSE_HEADER, purpose_from_header
from policies.source import disclosures, emergency
from policies.source.anchors import AnchorReporter
from policies.source.context import PolicyTables, SourceContext
from policies.source.settings import SourceSettings
from schema.runtime.db import Database
from schema.runtime.graphql import build_schema, root_type
from schema.runtime.service import Lifecycle, graphql_router, service_app
from schema.runtime.wellknown import WellKnown

__all__ = ["ContextFactory", "create_source"]

ContextFactory = Callable[..., SourceContext]
"""A ``SourceContext`` subclass (or a partial of one) given the fields every source sets."""


def create_source(
    *,
    name: str,
    title: str,
    settings: SourceSettings,
    db: Database,
    migrations: Path,
    describe: Callable[[], WellKnown],
    authenticator: Authenticator,
    enforcer: PolicyEnforcer,
    tables: PolicyTables,
    new_context: ContextFactory,
    queries: Mapping[str, object],
    mutations: Mapping[str, object] | None = None,
    lifecycles: Sequence[Lifecycle] = (),
    extra_ready: Callable[[], Awaitable[dict[str, bool]]] | None = None,
) -> FastAPI:
    """A source's app: well-known, health, and ``/graphql`` enforcing and auditing its policy."""
    # The audit chain's head goes to the hub (when the source has one).
    anchors = AnchorReporter(db, tables.audit_log, settings, describe().id)
    app = service_app(
        name=name,
        title=title,
        settings=settings,
        db=db,
        migrations=migrations,
        describe=describe,
        lifecycles=[*lifecycles, anchors.lifecycle],
        extra_ready=extra_ready,
    )

    audit = AuditWriter(db, tables.audit_log)
    cursor_secret = settings.cursor_secret.encode()

    async def context(
        authorization: Annotated[str | None, Header()] = None,
        purpose: Annotated[str | None, Header(alias=PURPOSE_HEADER)] = None,
    ) -> SourceContext:
        return new_context(
            db=db,
            caller=await authenticator.authenticate(authorization),
            enforcer=enforcer,
            tables=tables,
            audit=audit,
            cursor_secret=cursor_secret,
            purpose=purpose_from_header(purpose, settings.purposes),
        )

    query = root_type(
        "Query", {**queries, **emergency.query_fields(), **disclosures.query_fields()}
    )
    mutation = root_type("Mutation", {**(mutations or {}), **emergency.mutation_fields()})
    schema = build_schema(
        query=query, mutation=mutation, settings=settings, extensions=[PolicyExtension]
    )
    app.include_router(graphql_router(schema, context, settings), prefix="/graphql")
    app.include_router(anchors.router(authenticator, enforcer.owner.org))
    app.state.authenticator = authenticator
    app.state.anchors = anchors
    return app
