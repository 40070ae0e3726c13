"""The community node: a FastAPI app speaking the node protocol over its own database."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from node.aid.component import create_aid
from node.aid.service import AidParty
from node.auth import node_authenticator, node_revocation_poller
from node.context import NodeContext
from node.flags import create_flags
from node.graphql import node_queries
from node.mqtt import MqttMetrics, MqttSubscriber
from node.mqtt.readings import ingest_sink
from node.sensors import create_sensors
from node.settings import NodeSettings, check_authentication
from node.tables import AID, AUDIT_LOG, FLAGS, POLICY, SENSORS, TABLES
from policies.caller import Authenticator
from policies.enforce import PolicyEnforcer
from policies.engine import Owner
from policies.revocations import poll_revocations
from policies.source import create_source
from schema import SCHEMA_VERSION
from schema.enums import OrgKind
from schema.records import REGISTRY
from schema.runtime.db import Database
from schema.runtime.service import wrap
from schema.runtime.wellknown import SourceKind, WellKnown
from schema.store.aggregates import AGGREGATES_FIELD
from schema.store.resolvers import mutation_fields
from schema.store.specs import bind_specs

__all__ = ["MIGRATIONS", "create_app", "node_owner", "node_well_known"]

MIGRATIONS = Path(__file__).parent / "migrations"


def node_owner(settings: NodeSettings) -> Owner:
    """The community whose data the node serves, as its policies see it."""
    return Owner(
        org=settings.org_code,
        kind=OrgKind.COMMUNITY,
        district=settings.district,
        neighbours=frozenset(settings.neighbours),
    )


def node_well_known(settings: NodeSettings) -> WellKnown:
    """The node's ``/.well-known/linli-node`` document."""
    return WellKnown(
        id=settings.source_id,
        kind=SourceKind.COMMUNITY,
        name=settings.org_name,
        division_code=settings.org_code,
        district=settings.district,
        neighbours=settings.neighbours,
        bbox=settings.bbox,
        schema_version=SCHEMA_VERSION,
        capabilities=[REGISTRY[name].field_name for name in TABLES.by_type] + [AGGREGATES_FIELD],
    )


def create_app(settings: NodeSettings, authenticator: Authenticator | None = None) -> Any:
    """The node's ASGI app; refuses to build with unsafe settings or an invalid policy file."""
    # Settings changed after validation (model_copy) are checked again here.
    check_authentication(settings)
    enforcer = PolicyEnforcer.load(node_owner(settings), settings.policy_file)
    db = Database(settings.database_url)
    http = httpx.AsyncClient()
    # A given authenticator (tests) brings its own checks; no poller then.
    poller = node_revocation_poller(settings, http) if authenticator is None else None
    auth = authenticator or node_authenticator(settings, http, poller)
    described = node_well_known(settings)

    @asynccontextmanager
    async def http_client() -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    specs = bind_specs(TABLES)
    flags = create_flags(settings, db, FLAGS, specs["RiskFlag"], http)
    party = AidParty(
        org=settings.org_code,
        contact=settings.aid_contact,
        aid=AID,
        outbox=FLAGS,
        resources=specs["Resource"].table,
        requests=specs["AidRequest"].table,
        volunteers=specs["Volunteer"].table,
        audit_log=AUDIT_LOG,
    )
    aid = create_aid(settings, db, party, flags.wake)
    sensors = create_sensors(
        settings, db, SENSORS, specs["Sensor"], specs["RiskFlag"], FLAGS, flags.wake.set
    )
    record_hooks = {**flags.record_hooks, **sensors.record_hooks, **aid.record_hooks}

    # Readings over MQTT, when a broker is configured (node/mqtt).
    mqtt = (
        MqttSubscriber(settings, ingest_sink(sensors.store, settings.org_code), MqttMetrics())
        if settings.mqtt_url is not None
        else None
    )

    app = create_source(
        name="node",
        title=f"Linli node {settings.source_id} {settings.org_name}",
        settings=settings,
        db=db,
        migrations=MIGRATIONS,
        describe=lambda: described,
        authenticator=auth,
        enforcer=enforcer,
        tables=POLICY,
        new_context=functools.partial(
            NodeContext,
            settings=settings,
            record_hooks=record_hooks,
        ),
        queries=node_queries(
            specs, {**flags.query_fields(), **aid.query_fields(), **sensors.query_fields()}
        ),
        mutations={
            **mutation_fields(specs),
            **flags.mutation_fields(),
            **aid.mutation_fields(),
        },
        # Workers stop before the client closes.
        lifecycles=[
            http_client,
            lambda: poll_revocations(poller),
            flags.lifecycle,
            sensors.lifecycle,
            *([mqtt.running] if mqtt is not None else []),
        ],
    )
    if poller is not None:
        poller.register(app.state.metrics.registry)
    flags.metrics.register(app.state.metrics.registry)
    sensors.metrics.register(app.state.metrics.registry)
    app.state.flags = flags
    app.include_router(flags.router(auth.authenticate))
    app.state.aid = aid
    app.include_router(aid.router(auth.authenticate))
    app.state.sensors = sensors
    app.include_router(sensors.router(auth.authenticate))
    if mqtt is not None:
        mqtt.metrics.register(app.state.metrics.registry)
    app.state.mqtt = mqtt
    return wrap(app, settings)
