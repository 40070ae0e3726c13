"""The adapter service: one adapter behind the node protocol, its poller as a lifecycle.

``GET /.well-known/linli-node`` (kind ``adapter``, its capabilities and its
upstream status), ``POST /graphql`` (the common read API over the adapter's
own tables; no record mutations: writes come only from the poller), ``/healthz``,
``/readyz`` (database, migrations, and the upstream not ``down``), ``/metrics``.
Callers present a bearer token checked as a node checks it
(``policies.tokens``). The service is built as a node is
(``policies.source.create_source``): what callers see is the owner's sharing
policy in the current mode (an emergency declared here, directly or relayed by
the hub, widens it), with the reasons in ``extensions.policy`` and every
disclosure in the adapter's own audit log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from fastapi import APIRouter

from adapters.base import AdapterStatus, PollLoop, PollReport
from adapters.settings import AdapterServiceSettings
from adapters.store import MIGRATIONS, POLICY, SPECS, inactive_alert_ids
from policies import (
    Authenticator,
    BearerAuthenticator,
    JwksCache,
    Owner,
    TokenVerifier,
)
from policies.enforce import PolicyEnforcer
from policies.revocations import RevocationPoller, poll_revocations, revocation_poller
from policies.source import SourceContext, create_source
from policies.static import StaticTokenAuthenticator
from schema import SCHEMA_VERSION
from schema.errors import Forbidden
from schema.ids import GlobalId
from schema.runtime.db import Database
from schema.runtime.service import wrap
from schema.runtime.wellknown import SourceKind, UpstreamStatus, WellKnown
from schema.store.resolvers import node_field, query_fields
from schema.store.specs import RecordSpec

__all__ = [
    "Adapter",
    "AdapterContext",
    "adapter_owner",
    "adapter_queries",
    "adapter_well_known",
    "create_adapter_app",
]

log = logging.getLogger("linli.adapters.service")


class Adapter(Protocol):
    """What the service needs of an adapter: what it serves and how to poll it."""

    name: str
    capabilities: list[str]
    """Read-API fields it fills (``alerts``, ``incidents``, ``resources``)."""
    interval_s: float
    poll_timeout_s: float

    async def poll(self, db: Database) -> PollReport:
        """Read the upstream once and store what changed (one transaction)."""
        ...

    def router(self, db: Database, settings: AdapterServiceSettings) -> APIRouter | None:
        """Extra HTTP endpoints of this adapter (the CAP feed), if any."""
        ...


@dataclass(kw_only=True)
class AdapterContext(SourceContext):
    """The shared policy state of one request and the adapter's settings."""

    settings: AdapterServiceSettings

    @property
    def source_id(self) -> str:
        return self.settings.source_id

    def require_staff(self, also: Collection[str] = ()) -> str:
        """Always refuse: an adapter's records change only through its upstream system."""
        raise Forbidden("an adapter's records change only through its upstream system")

    async def disclose(
        self, spec: RecordSpec, records: list[dict[str, Any]], *, returned: bool = True
    ) -> list[dict[str, Any] | None]:
        """The owner's policy applied to each record; superseded alerts are not active."""
        if spec.type_name == "Alert" and records:
            locals_ = [GlobalId.parse(r["id"]).local for r in records]
            async with self.db.sessions() as session:
                superseded = await inactive_alert_ids(session, locals_)
            for record, local in zip(records, locals_, strict=True):
                if local in superseded:
                    record["active"] = False
        return await super().disclose(spec, records, returned=returned)


def adapter_queries(specs: dict[str, RecordSpec]) -> dict[str, object]:
    """The read API of the adapter's record types; its only mutations are emergency mode's."""
    # Superseded alerts are marked inactive in ``disclose``, so ``activeOnly`` (which
    # filters on the shown ``active``) leaves them out with nothing more here.
    return {**query_fields(specs), "node": node_field(specs)}


def adapter_owner(settings: AdapterServiceSettings) -> Owner:
    """The organisation whose data the adapter serves, as its policies see it."""
    return Owner(org=settings.org_code, kind=settings.org_kind, district=settings.district)


def adapter_well_known(
    settings: AdapterServiceSettings, adapter: Adapter, status: AdapterStatus
) -> WellKnown:
    """The adapter's ``/.well-known/linli-node`` document, with its upstream status now."""
    return WellKnown(
        id=settings.adapter_id,
        kind=SourceKind.ADAPTER,
        name=settings.adapter_name,
        division_code=settings.org_code,
        district=settings.district,
        bbox=settings.bbox,
        schema_version=SCHEMA_VERSION,
        capabilities=adapter.capabilities,
        adapter=UpstreamStatus.model_validate({"system": adapter.name, **status.as_dict()}),
    )


def _authenticator(
    settings: AdapterServiceSettings, http: httpx.AsyncClient, poller: RevocationPoller | None
) -> Authenticator:
    if settings.token_issuer and settings.jwks_url:
        jwks = poller.jwks if poller is not None else JwksCache(settings.jwks_url, http)
        verifier = TokenVerifier(settings.token_issuer, settings.audience, jwks)
        return BearerAuthenticator(verifier, poller.revocations if poller is not None else None)
    log.warning(
        "adapter %s accepts ONLY %d statically trusted caller(s): no token issuer is configured",
        settings.adapter_id,
        len(settings.trusted_callers),
    )
    return StaticTokenAuthenticator(settings.trusted_callers, district=settings.district)


def create_adapter_app(
    settings: AdapterServiceSettings,
    adapter: Adapter,
    http: httpx.AsyncClient,
    *,
    authenticator: Authenticator | None = None,
    poll: bool = True,
) -> Any:
    """The adapter service's ASGI app; ``poll=False`` leaves polling to the caller (tests)."""
    db = Database(settings.database_url)
    status = AdapterStatus(adapter.name)
    loop = PollLoop(
        adapter.name,
        lambda: adapter.poll(db),
        interval_s=adapter.interval_s,
        timeout_s=adapter.poll_timeout_s,
        status=status,
    )

    @asynccontextmanager
    async def polling() -> AsyncIterator[None]:
        if not poll:
            yield
            return
        async with loop.running():
            yield

    @asynccontextmanager
    async def http_client() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    async def upstream_ready() -> dict[str, bool]:
        return {"upstream": status.health.value != "down"}

    # A given authenticator (tests) brings its own checks; no poller then.
    poller = (
        revocation_poller(
            issuer=settings.token_issuer,
            jwks_url=settings.jwks_url,
            url=settings.revocations_url,
            interval_s=settings.revocation_poll_s,
            http=http,
        )
        if authenticator is None
        else None
    )
    auth = authenticator or _authenticator(settings, http, poller)
    enforcer = PolicyEnforcer.load(adapter_owner(settings), settings.policy_file)
    specs = {name: spec for name, spec in SPECS.items() if spec.field_name in adapter.capabilities}

    app = create_source(
        name="adapter",
        title=f"Linli adapter {settings.adapter_id} {settings.adapter_name}",
        settings=settings,
        db=db,
        migrations=MIGRATIONS,
        describe=lambda: adapter_well_known(settings, adapter, status),
        authenticator=auth,
        enforcer=enforcer,
        tables=POLICY,
        new_context=functools.partial(AdapterContext, settings=settings),
        queries=adapter_queries(specs),
        lifecycles=[http_client, lambda: poll_revocations(poller), polling],
        extra_ready=upstream_ready,
    )
    if poller is not None:
        poller.register(app.state.metrics.registry)
    extra = adapter.router(db, settings)
    if extra is not None:
        app.include_router(extra)
    app.state.poll_loop = loop
    app.state.adapter_status = status
    return wrap(app, settings)
