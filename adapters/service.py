"""The adapter service: one adapter behind the node protocol, its poller as a lifecycle.

``GET /.well-known/linli-node`` (kind ``adapter``, its capabilities and its
upstream status), ``POST /graphql`` (the common read API over the adapter's
own tables; no mutations: writes come only from the poller), ``/healthz``,
``/readyz`` (database, migrations, and the upstream not ``down``), ``/metrics``.
Callers present a bearer token checked as a node checks it
(``policies.tokens``); what they see is the owner's sharing policy
(``policies.disclose_page``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import httpx
import strawberry
from fastapi import APIRouter, Header
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from adapters.base import AdapterStatus, PollLoop, PollReport
from adapters.settings import AdapterServiceSettings
from adapters.store import MIGRATIONS, SPECS, inactive_alert_ids
from policies import (
    Authenticator,
    BearerAuthenticator,
    Caller,
    JwksCache,
    Mode,
    Owner,
    PolicyEngine,
    TokenVerifier,
    disclose_page,
)
from policies.static import StaticTokenAuthenticator
from schema import SCHEMA_VERSION
from schema.errors import Forbidden
from schema.ids import GlobalId
from schema.runtime.db import Database
from schema.runtime.graphql import build_schema
from schema.runtime.service import graphql_router, service_app, wrap
from schema.store.resolvers import node_field, query_fields
from schema.store.specs import RecordSpec

__all__ = [
    "Adapter",
    "AdapterContext",
    "adapter_schema",
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


@dataclass
class AdapterContext(BaseContext):
    """Database, settings, the caller and the owner's policy, for one request."""

    db: Database
    settings: AdapterServiceSettings
    caller: Caller
    engine: PolicyEngine
    inactive: set[str] = field(default_factory=set)
    """Global ids of alerts this request found superseded."""

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def source_id(self) -> str:
        return self.settings.source_id

    def require_staff(self) -> str:
        raise Forbidden("an adapter's records change only through its upstream system")

    @property
    def owner(self) -> Owner:
        return Owner(
            org=self.settings.org_code, kind=self.settings.org_kind, district=self.settings.district
        )

    async def disclose(
        self, spec: RecordSpec, records: list[dict[str, Any]]
    ) -> list[dict[str, Any] | None]:
        """The owner's policy applied to each record; superseded alerts are not active."""
        if spec.type_name == "Alert" and records:
            locals_ = [GlobalId.parse(r["id"]).local for r in records]
            async with self.db.sessions() as session:
                superseded = await inactive_alert_ids(session, locals_)
            for record, local in zip(records, locals_, strict=True):
                if local in superseded:
                    record["active"] = False
                if record.get("active") is False:
                    self.inactive.add(record["id"])
        shown = disclose_page(
            records, spec.type_name, self.caller, owner=self.owner, engine=self.engine,
            mode=Mode.NORMAL,
        )  # fmt: skip
        return [values for values, _reasons in shown]


def _active_alerts(field_: Any) -> Any:
    """``alerts`` that leaves out superseded alerts when ``activeOnly`` is asked for.

    The store's own ``activeOnly`` knows only Cancel messages; supersession by
    Update and Cancel lives in the adapter's state tables, so it is applied
    after disclosure, like a policy hiding a record (the cursor still follows
    the rows read).
    """
    inner = field_.base_resolver.wrapped_func

    async def resolve(
        info: Info[AdapterContext, None],
        where: Any = None,
        first: int | None = None,
        after: str | None = None,
        order_by: Any = None,
    ) -> Any:
        kwargs: dict[str, Any] = {"where": where, "first": first, "after": after}
        if order_by is not None:
            kwargs["order_by"] = order_by
        connection = await inner(info, **kwargs)
        if where is not None and where.active_only:
            connection.edges = [
                e for e in connection.edges if str(e.node.id) not in info.context.inactive
            ]
        return connection

    annotations = dict(inner.__annotations__)
    annotations["info"] = Info[AdapterContext, None]
    annotations["order_by"] = annotations["order_by"] | None
    resolve.__annotations__ = annotations
    resolve.__name__ = "alerts"
    return strawberry.field(resolver=resolve, name="alerts", description=field_.description)


def adapter_schema(settings: AdapterServiceSettings, specs: dict[str, RecordSpec]) -> Any:
    """The read API of the adapter's record types; no mutations."""
    fields = query_fields(specs)
    if "alerts" in fields:
        fields["alerts"] = _active_alerts(fields["alerts"])
    query = strawberry.type(type("Query", (), {**fields, "node": node_field(specs)}))
    return build_schema(query=query, settings=settings)


def _authenticator(settings: AdapterServiceSettings, http: httpx.AsyncClient) -> Authenticator:
    if settings.token_issuer and settings.jwks_url:
        jwks = JwksCache(settings.jwks_url, http)
        return BearerAuthenticator(TokenVerifier(settings.token_issuer, settings.audience, jwks))
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

    app = service_app(
        name="adapter",
        title=f"Linli adapter {settings.adapter_id} {settings.adapter_name}",
        settings=settings,
        db=db,
        migrations=MIGRATIONS,
        lifecycles=[http_client, polling],
        extra_ready=upstream_ready,
    )
    auth = authenticator or _authenticator(settings, http)
    engine = PolicyEngine(settings.policy_file)
    specs = {name: spec for name, spec in SPECS.items() if spec.field_name in adapter.capabilities}

    async def context(
        authorization: Annotated[str | None, Header()] = None,
    ) -> AdapterContext:
        caller = await auth.authenticate(authorization)
        return AdapterContext(db=db, settings=settings, caller=caller, engine=engine)

    schema = adapter_schema(settings, specs)
    app.include_router(graphql_router(schema, context, settings), prefix="/graphql")

    @app.get("/.well-known/linli-node")
    async def well_known() -> dict[str, Any]:
        return {
            "id": settings.adapter_id,
            "kind": "adapter",
            "name": settings.adapter_name,
            "division_code": settings.org_code,
            "district": settings.district,
            "bbox": settings.bbox.model_dump() if settings.bbox else None,
            "schema_version": SCHEMA_VERSION,
            "capabilities": adapter.capabilities,
            "adapter": {"system": adapter.name, **status.as_dict()},
        }

    extra = adapter.router(db, settings)
    if extra is not None:
        app.include_router(extra)
    app.state.poll_loop = loop
    app.state.adapter_status = status
    return wrap(app, settings)
