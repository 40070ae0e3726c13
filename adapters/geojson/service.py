"""The GeoJSON adapter: a hazard feed's features kept as Incidents."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from adapters.base import Batch, HttpFetcher, PollReport
from adapters.geojson.client import GeoJsonClient, GeoJsonSettings
from adapters.geojson.codec import incidents_from_collection
from adapters.settings import AdapterServiceSettings
from adapters.store import SPECS, load_validators, save_validators, upsert_keyed
from schema.records import IncidentCreate
from schema.runtime.db import Database

__all__ = ["GeoJsonAdapter"]


class GeoJsonAdapter:
    """Reads a FeatureCollection as Incidents (``IncidentReader``)."""

    name = "geojson"

    def __init__(self, settings: GeoJsonSettings, fetcher: HttpFetcher) -> None:
        self.capabilities = ["incidents"]
        self.settings = settings
        self.client = GeoJsonClient(fetcher, settings)
        self.interval_s = settings.interval_s
        self.poll_timeout_s = settings.poll_timeout_s

    async def read_incidents(self, since: datetime | None) -> Batch[IncidentCreate]:
        """Every feature of the feed (a feed is a snapshot: ``since`` filters nothing here)."""
        _fetched, features = await self.client.fetch(None)
        return incidents_from_collection(features, self.settings.mapping, where=self.settings.url)

    async def poll(self, db: Database) -> PollReport:
        """Fetch the feed if it changed and upsert its features."""
        url = self.settings.url
        async with db.sessions() as session:
            validators = await load_validators(session, self.name, url)
        fetched, features = await self.client.fetch(validators)
        if fetched.not_modified:
            return PollReport(not_modified=True)
        batch = incidents_from_collection(features, self.settings.mapping, where=url)
        counts = dict.fromkeys(("created", "updated", "unchanged"), 0)
        async with db.transaction() as session:
            for item in batch.records:
                outcome = await upsert_keyed(session, SPECS["Incident"], self.name, item)
                counts[outcome.action] += 1
            await save_validators(session, self.name, url, fetched.validators)
        return PollReport(
            created=counts["created"],
            updated=counts["updated"],
            unchanged=counts["unchanged"],
            problems=tuple(batch.problems),
        )

    def router(self, db: Database, settings: AdapterServiceSettings) -> APIRouter | None:
        return None
