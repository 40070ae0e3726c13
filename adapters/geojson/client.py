"""Fetching a GeoJSON hazard feed: conditional GETs, bounded size."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.base import Fetched, HttpFetcher, Validators
from adapters.geojson.codec import PropertyMapping, parse_collection

__all__ = ["GeoJsonClient", "GeoJsonSettings"]


class GeoJsonSettings(BaseSettings):
    """One GeoJSON feed (env ``LINLI_ADAPTER_GEOJSON_*`` or TOML ``[geojson]``)."""

    model_config = SettingsConfigDict(env_prefix="LINLI_ADAPTER_GEOJSON_", extra="ignore")

    url: str = Field(
        "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/4.5_day.geojson",
        description="The FeatureCollection's URL",
    )
    mapping: PropertyMapping = Field(default_factory=PropertyMapping)
    interval_s: float = Field(300.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)
    poll_timeout_s: float = Field(60.0, gt=0)
    max_bytes: int = Field(16 * 1024 * 1024, ge=1024)


class GeoJsonClient:
    """One feed, over the service's shared HTTP client."""

    def __init__(self, fetcher: HttpFetcher, settings: GeoJsonSettings) -> None:
        self.fetcher = fetcher
        self.settings = settings

    async def fetch(self, validators: Validators | None) -> tuple[Fetched, list[Any]]:
        """The feed and its features ([] when not modified)."""
        fetched = await self.fetcher.get(self.settings.url, validators=validators)
        if fetched.not_modified:
            return fetched, []
        return fetched, parse_collection(fetched.body, where=self.settings.url)
