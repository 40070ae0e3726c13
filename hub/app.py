"""The district hub: one GraphQL API over every source, the OAuth 2.0 authorization server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Header
from starlette.requests import HTTPConnection

from hub.aid.component import AID_SCOPES, create_aid
from hub.aid.edxl_rm import edxl_rm_router
from hub.alerts import alerts_router
from hub.auth import create_auth
from hub.auth.service import orgs_with_scope
from hub.db import metadata
from hub.federation.component import create_federation
from hub.federation.context import HubContext
from hub.federation.registry import SourceHealth
from hub.federation.superior import superior_hub
from hub.flags.below import FLAGS_CAPABILITY
from hub.flags.component import create_flags
from hub.flags.resolvers import SUBSCRIBE_SCOPES
from hub.governance.anchors import anchors_router, checkpoint_signer
from hub.governance.audit import RelayLog, record
from hub.graphql import ANONYMOUS, HubGraphQLRouter, hub_schema
from hub.secrets_at_rest import secrets_lifecycle
from hub.settings import HubSettings
from hub.sitreps import create_sitreps
from hub.web import mount_web
from policies.audit import AuditEntry
from policies.caller import Caller
from policies.purposes import PURPOSE_HEADER, purpose_from_header
from schema import SCHEMA_VERSION
from schema.export import ROOT as SDL_ROOT
from schema.runtime.db import Database
from schema.runtime.service import service_app, wrap
from schema.runtime.wellknown import SourceKind, WellKnown
from schema.scopes import Scope
from schema.store.aggregates import AGGREGATES_FIELD
from schema.store.specs import SPECS

__all__ = ["HUB_SDL", "MIGRATIONS", "create_app", "hub_sdl", "hub_well_known", "metadata"]

MIGRATIONS = Path(__file__).parent / "migrations"
HUB_SDL = SDL_ROOT / "sdl" / "hub.graphql"
"""The hub's whole API as SDL, beside the common schema (``linli schema export``)."""


def hub_well_known(settings: HubSettings, federates: list[str] | None = None) -> WellKnown:
    """The hub's ``/.well-known/linli-node`` document, as a source of a higher hub.

    ``federates`` names the hubs below it, so a higher hub can refuse a loop.
    """
    return WellKnown(
        id=settings.hub_id,
        kind=SourceKind.HUB,
        name=settings.hub_name,
        division_code=settings.district,
        district=settings.district,
        schema_version=SCHEMA_VERSION,
        capabilities=[spec.field_name for spec in SPECS.values()]
        + [AGGREGATES_FIELD, FLAGS_CAPABILITY],
        federates=federates or [],
    )


def create_app(settings: HubSettings) -> Any:
    """The hub's ASGI app."""
    return wrap(_hub_app(settings), settings)


def _hub_app(settings: HubSettings) -> Any:
    # The app before its outer middleware: ``state.schema`` is the GraphQL schema it serves.
    db = Database(settings.database_url)

    def known_source(audience: str) -> bool:
        # Bound late: the token endpoint answers only once the app (and its federation) runs.
        return audience in federation.registry.sources

    auth = create_auth(settings, db, known_source=known_source)

    async def mint(caller: Caller, audience: str) -> str:
        return await auth.issuer.mint_for_source(caller, audience)

    async def source_audit(entry: AuditEntry) -> None:
        await record(db, [entry])

    federation = create_federation(settings, db, mint, RelayLog(db), source_audit)

    def node_url(source_id: str) -> str | None:
        source = federation.registry.sources.get(source_id)
        if source is None or source.health is SourceHealth.NOT_ALLOWED:
            return None
        return source.url

    async def staffed() -> set[str]:
        async with db.sessions() as session:
            return await orgs_with_scope(session, Scope.RISK_VERIFY)

    def source_owner(source_id: str) -> str | None:
        source = federation.registry.sources.get(source_id)
        return (source.division_code or None) if source is not None else None

    flags = create_flags(
        settings,
        db,
        authenticate=auth.authenticator.authenticate,
        mint=mint,
        node_url=node_url,
        node_http=federation.client.http,
        staffed=staffed,
        federation=federation.executor,
    )
    superior = superior_hub(settings)  # the hub of the level above, if there is one
    sitreps = create_sitreps(
        settings,
        db,
        federation=federation.executor,
        authenticate=auth.authenticator.authenticate,
        events_changed=flags.notifier.notify,
        superior=superior,
    )
    aid = create_aid(settings, db, authenticate=auth.authenticator.authenticate,
                     notifier=flags.notifier, federation=federation.executor)  # fmt: skip
    app = service_app(
        name="hub",
        title=f"Linli hub {settings.hub_id} {settings.hub_name}",
        settings=settings,
        db=db,
        migrations=MIGRATIONS,
        describe=lambda: hub_well_known(settings, federation.registry.federated_hubs()),
        # The stored secrets first: a key that cannot open them stops the hub here.
        lifecycles=[
            secrets_lifecycle(settings, db),
            auth.lifecycle,
            federation.lifecycle,
            flags.lifecycle,
            *([superior.lifecycle] if superior is not None else []),
            sitreps.lifecycle,  # before the superior's client closes: it sends through it
            aid.lifecycle,  # matches open requests through the federation
        ],
    )
    # Other hub parts: app.state.issuer.mint_for_source(...), app.state.authenticator.
    app.state.auth = auth
    app.state.issuer = auth.issuer
    app.state.authenticator = auth.authenticator
    app.include_router(auth.router)
    app.state.federation = federation
    app.state.flags = flags
    app.state.superior = superior  # reports and escalations go up through it
    flags.metrics.register(app.state.metrics.registry)
    app.include_router(flags.router)
    app.include_router(alerts_router(federation.executor, settings))
    app.state.sitreps = sitreps
    app.include_router(sitreps.router)
    app.state.aid = aid
    aid.metrics.register(app.state.metrics.registry)
    app.include_router(aid.router)
    app.include_router(edxl_rm_router(aid))
    sign_checkpoint = checkpoint_signer(auth.keys, settings.issuer)
    app.include_router(
        anchors_router(db, auth.authenticator.authenticate, source_owner, sign_checkpoint)
    )

    async def context(
        connection: HTTPConnection,
        authorization: Annotated[str | None, Header()] = None,
        purpose: Annotated[str | None, Header(alias=PURPOSE_HEADER)] = None,
    ) -> HubContext:
        if connection.scope["type"] == "websocket":
            # Authenticated at connection_init (HubGraphQLRouter); subscriptions read no records.
            return HubContext(caller=ANONYMOUS, federation=federation.executor)
        caller = await auth.authenticator.authenticate(authorization)
        # Checked against the hub's list before any fan-out; only a listed code is forwarded.
        stated = purpose_from_header(purpose, settings.purposes) or None
        return HubContext(caller=caller, federation=federation.executor, purpose=stated)

    app.state.schema = schema = hub_schema(settings, flags, sitreps, aid)
    graphql = HubGraphQLRouter(
        schema,
        context,
        settings,
        authenticate=auth.authenticator.authenticate,
        ws_scopes=SUBSCRIBE_SCOPES | AID_SCOPES,
        still_valid=auth.authenticator.still_valid,
        changed=auth.revocations.list.changed,
    )
    app.include_router(graphql, prefix="/graphql")
    mount_web(app, settings)
    return app


def hub_sdl() -> str:
    """The hub's whole GraphQL API as SDL: the schema ``create_app`` serves, built, never run.

    Clients generate code from it while introspection is off in production.
    """
    app = _hub_app(HubSettings(database_url="sqlite+aiosqlite://"))  # never connected
    sdl: str = app.state.schema.as_str()
    return sdl.rstrip() + "\n"
