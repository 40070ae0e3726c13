"""The CAP adapter: polls alert sources into the store, and serves the active public alerts.

``GET /alerts.atom`` is an ATOM feed of the alerts that are active (not a
Cancel, not expired, not superseded by an Update or Cancel), ``Actual`` and ``Public``;
each entry links to ``GET /alerts/{identifier}.xml``, the CAP 1.2 message
(valid against the OASIS XSD). Both are public, as CAP Public alerts are.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import TypeAdapter

from adapters.base import Batch, HttpFetcher, PollReport, Problem
from adapters.cap.client import CapClient, CapSettings
from adapters.cap.codec import ATOM_CONTENT_TYPE, CAP_CONTENT_TYPE, write_alert
from adapters.cap.errors import CapError
from adapters.cap.feed import write_atom_feed
from adapters.errors import UpstreamUnavailable
from adapters.settings import AdapterServiceSettings
from adapters.store import (
    SPECS,
    alert_keys,
    load_validators,
    save_validators,
    store_alert,
)
from schema.enums import CapMsgType, CapScope, CapStatus
from schema.records import AlertCreate, alert_active
from schema.runtime.db import Database
from schema.runtime.http import error_body
from schema.storage import utcnow

__all__ = ["CapAdapter"]

log = logging.getLogger("linli.adapters.cap")

_FEED_LIMIT = 500


class CapAdapter:
    """Reads CAP alerts (``AlertReader``) and keeps the adapter's alert table current."""

    name = "cap"

    def __init__(self, settings: CapSettings, fetcher: HttpFetcher) -> None:
        self.capabilities = ["alerts"]
        self.settings = settings
        self.client = CapClient(fetcher, settings)
        self.interval_s = settings.interval_s
        self.poll_timeout_s = settings.poll_timeout_s
        self._db: Database | None = None

    async def read_alerts(self) -> Batch[AlertCreate]:
        """Every alert the sources have that was not read before (validators in ``db``)."""
        if self._db is None:
            raise RuntimeError("read_alerts needs a database: call poll(db) first")
        return (await self._read(self._db))[0]

    async def _read(self, db: Database) -> tuple[Batch[AlertCreate], dict[str, Any], int]:
        async with db.sessions() as session:
            cache: dict[str, Any] = {}

            async def known(url: str) -> Any:
                if url not in cache:
                    cache[url] = await load_validators(session, self.name, url)
                return cache[url]

            read = await self.client.read(known)
        return read.batch, read.validators, read.sources_failed

    async def poll(self, db: Database) -> PollReport:
        """Read every source and store new alerts in one transaction."""
        self._db = db
        batch, validators, failed = await self._read(db)
        if self.settings.sources and failed == len(self.settings.sources):
            first = batch.problems[0]
            raise UpstreamUnavailable(f"every CAP source failed; first: {first.reason}")
        created = unchanged = 0
        problems: list[Problem] = list(batch.problems)
        async with db.transaction() as session:
            for item in batch.records:
                where = f"{item.record.sender}/{item.record.identifier}"
                outcome = await store_alert(session, item.record, where=where)
                problems.extend(outcome.problems)
                if outcome.stored:
                    created += 1
                else:
                    unchanged += 1
            for url, found in validators.items():
                await save_validators(session, self.name, url, found)
        for problem in problems:
            log.warning("CAP input refused: %s %s %s", problem.where, problem.code, problem.reason)
        return PollReport(
            created=created,
            unchanged=unchanged,
            problems=tuple(problems),
            not_modified=not batch.records and not validators,
        )

    def router(self, db: Database, settings: AdapterServiceSettings) -> APIRouter:
        """``/alerts.atom`` and ``/alerts/{identifier}.xml``."""
        return alert_feed_router(db, settings)


_ALERTS = TypeAdapter(AlertCreate)


def _public_alerts() -> Any:
    table: Any = SPECS["Alert"].table
    superseded = sa.select(alert_keys.c.alert_id).where(alert_keys.c.superseded_by.is_not(None))
    return (
        table,
        sa.select(table).where(
            table.retired_at.is_(None),
            table.scope == CapScope.PUBLIC.value,
        ),
        superseded,
    )


def _as_alert(row: Any) -> AlertCreate:
    return _ALERTS.validate_python({name: getattr(row, name) for name in AlertCreate.model_fields})


def alert_feed_router(db: Database, settings: AdapterServiceSettings) -> APIRouter:
    """The public CAP endpoints of the adapter service."""
    router = APIRouter()
    base = settings.public_url.rstrip("/")

    @router.get("/alerts.atom", include_in_schema=False)
    async def alerts_atom() -> Response:
        table, statement, superseded = _public_alerts()
        statement = (
            statement.where(
                table.status == CapStatus.ACTUAL.value,
                table.msg_type.in_([CapMsgType.ALERT.value, CapMsgType.UPDATE.value]),
                table.id.not_in(superseded),
            )
            .order_by(table.sent.desc(), table.id)
            .limit(_FEED_LIMIT)
        )
        async with db.sessions() as session:
            rows = list((await session.execute(statement)).scalars())
        alerts: list[AlertCreate] = []
        now = utcnow()
        for row in rows:
            alert = _as_alert(row)
            if not alert_active(alert, now):  # expired (Cancels are left out above)
                continue
            try:
                write_alert(alert)  # only what can be served as valid CAP is listed
            except CapError as error:
                log.warning("alert %s cannot be written as CAP: %s", alert.identifier, error)
                continue
            alerts.append(alert)
        updated = max((a.sent for a in alerts), default=datetime(1970, 1, 1, tzinfo=UTC))
        body = write_atom_feed(
            alerts,
            feed_id=f"{base}/alerts.atom",
            title=f"{settings.adapter_name}: active public alerts",
            updated=updated if alerts else utcnow(),
            link_base=f"{base}/alerts",
        )
        return Response(body, media_type=ATOM_CONTENT_TYPE)

    @router.get("/alerts/{name}", include_in_schema=False)
    async def alert_xml(name: str) -> Response:
        _table, statement, _ = _public_alerts()
        table: Any = SPECS["Alert"].table
        candidates = [name]
        if name.endswith(".xml"):
            candidates.insert(0, name.removesuffix(".xml"))
        async with db.sessions() as session:
            for identifier in candidates:
                row = (
                    await session.execute(
                        statement.where(table.identifier == identifier)
                        .order_by(table.sent.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
                if row is not None:
                    return Response(write_alert(_as_alert(row)), media_type=CAP_CONTENT_TYPE)
        return Response(
            error_body("NOT_FOUND", f"no public alert {name[:100]}"),
            status_code=404,
            media_type="application/json",
        )

    return router
