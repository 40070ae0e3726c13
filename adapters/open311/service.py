"""The Open311 adapter: service requests in as Incidents, confirmed risk flags out as requests."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import APIRouter

from adapters.base import (
    PENDING_PREFIX,
    Batch,
    ExternalStatusChange,
    Keyed,
    PollReport,
    Problem,
    problem_of,
)
from adapters.errors import AdapterError, InvalidMapping, UpstreamPending
from adapters.open311.client import Open311Client, Open311Settings
from adapters.open311.codec import FLAG_STATUS, incident_from_request, parse_time
from adapters.settings import AdapterServiceSettings
from adapters.store import SPECS, upsert_keyed
from schema.records import IncidentCreate, RiskFlagBase
from schema.runtime.db import Database
from schema.storage import utcnow

__all__ = ["PENDING_PREFIX", "Open311Adapter", "Open311FlagSink", "open311_flag_sink"]

log = logging.getLogger("linli.adapters.open311")


class Open311Adapter:
    """Reads service requests as Incidents (``IncidentReader``)."""

    name = "open311"

    def __init__(self, settings: Open311Settings, client: Open311Client) -> None:
        self.capabilities = ["incidents"]
        self.settings = settings
        self.client = client
        self.interval_s = settings.interval_s
        self.poll_timeout_s = settings.poll_timeout_s

    async def read_incidents(self, since: datetime | None) -> Batch[IncidentCreate]:
        """Requests filed since ``since`` (or ``first_since_days`` back), window by window."""
        now = utcnow()
        start = since or now - timedelta(days=self.settings.first_since_days)
        window = timedelta(days=self.settings.window_days)
        batch: Batch[IncidentCreate] = Batch()
        while start < now:
            end = min(start + window, now)
            for record in await self.client.requests(start, end):
                where = f"service_request {record.get('service_request_id', '?')}"
                code = str(record.get("service_code") or "")
                category = self.settings.category_by_service.get(
                    code, self.settings.default_category
                )
                try:
                    key, incident, _updated = incident_from_request(record, category=category)
                except AdapterError as error:
                    batch.problems.append(problem_of(where, error))
                    continue
                batch.records.append(Keyed(key, incident))
            start = end
        return batch

    async def poll(self, db: Database) -> PollReport:
        """Read the requests of the look-back window and upsert them.

        GeoReport v2 filters by ``requested_datetime`` only, so a request filed
        weeks ago and closed today is seen only by reading its window again;
        every poll reads the whole look-back window (unchanged requests cost a
        hash comparison, no write).
        """
        since = utcnow() - timedelta(days=self.settings.first_since_days)
        batch = await self.read_incidents(since)
        counts = dict.fromkeys(("created", "updated", "unchanged"), 0)
        async with db.transaction() as session:
            for item in batch.records:
                outcome = await upsert_keyed(session, SPECS["Incident"], self.name, item)
                counts[outcome.action] += 1
        return PollReport(
            created=counts["created"],
            updated=counts["updated"],
            unchanged=counts["unchanged"],
            problems=tuple(batch.problems),
        )

    def router(self, db: Database, settings: AdapterServiceSettings) -> APIRouter | None:
        return None


class Open311FlagSink:
    """Pushes confirmed risk flags as service requests (``FlagSink``) and reads their status."""

    def __init__(self, client: Open311Client) -> None:
        self.client = client
        self.settings = client.settings

    async def push(self, flag_id: str, flag: RiskFlagBase) -> str:
        """The service_request_id of the new request (``token:<t>`` if the id is not there yet).

        Never retried here: a POST that may have succeeded is not sent twice blindly.
        """
        service_code = self.settings.flag_services.get(flag.category)
        if service_code is None:
            raise InvalidMapping(
                f"no Open311 service_code for risk category {flag.category!r}",
                category=flag.category,
            )
        form = {
            "service_code": service_code,
            "lat": str(flag.location.lat),
            "long": str(flag.location.lon),
            "description": f"{flag.description}\n\n[Linli {flag_id}]"[:4000],
        }
        if flag.address:
            form["address_string"] = flag.address
        request_id, token = await self.client.post_request(form)
        if request_id is not None:
            return request_id
        assert token is not None
        try:
            return await self.client.request_id_for_token(token)
        except UpstreamPending:
            log.info("Open311 token %s has no id yet; kept as pending", token)
            return f"{PENDING_PREFIX}{token}"

    async def resolve(self, external_id: str) -> str:
        """The request id behind a pending ``token:`` id (UPSTREAM_PENDING while there is none)."""
        if not external_id.startswith(PENDING_PREFIX):
            return external_id
        return await self.client.request_id_for_token(external_id.removeprefix(PENDING_PREFIX))

    async def status_changes(
        self, external_ids: Sequence[str], since: datetime | None
    ) -> list[ExternalStatusChange]:
        """The current status of each pushed request, if it changed after ``since``.

        GeoReport v2 keeps no history, so each request yields at most its latest
        change; the status maps to the flag workflow by ``FLAG_STATUS``.
        """
        changes: list[ExternalStatusChange] = []
        for external_id in external_ids:
            request_id = await self.resolve(external_id)
            record = await self.client.request(request_id)
            updated = parse_time(record.get("updated_datetime"), field="updated_datetime")
            if updated is None or (since is not None and updated <= since):
                continue
            upstream_status = str(record.get("status") or "").lower()
            status = FLAG_STATUS.get(upstream_status)
            if status is None:
                continue
            changes.append(
                ExternalStatusChange(
                    external_id=request_id,
                    status=status.value,
                    at=updated,
                    note=str(record.get("status_notes") or ""),
                    upstream_status=upstream_status,
                )
            )
        changes.sort(key=lambda c: c.at)
        return changes


def open311_flag_sink(http: httpx.AsyncClient, options: Mapping[str, Any]) -> Open311FlagSink:
    """The ``FlagSink`` of one GeoReport v2 system (entry point ``linli.adapters: open311``)."""
    return Open311FlagSink(Open311Client(http, Open311Settings(**options)))


def problems_of(errors: Sequence[Exception], where: str) -> list[Problem]:
    """Problems for a list of errors at one place."""
    return [problem_of(where, e) for e in errors]
