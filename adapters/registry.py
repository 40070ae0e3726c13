"""The adapters ``linli adapter serve NAME`` knows, each built from its own settings section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from adapters.base import HttpFetcher, load_section_settings
from adapters.service import Adapter

__all__ = ["ADAPTERS", "build_adapter", "shared_http_client"]


def _cap(config: Path | None, http: httpx.AsyncClient) -> Adapter:
    from adapters.cap.client import CapSettings
    from adapters.cap.service import CapAdapter

    settings = load_section_settings(CapSettings, config, "cap")
    fetcher = HttpFetcher(http, timeout_s=settings.timeout_s, max_bytes=settings.max_feed_bytes)
    return CapAdapter(settings, fetcher)


def _open311(config: Path | None, http: httpx.AsyncClient) -> Adapter:
    from adapters.open311.client import Open311Client, Open311Settings
    from adapters.open311.service import Open311Adapter

    settings = load_section_settings(Open311Settings, config, "open311")
    return Open311Adapter(settings, Open311Client(http, settings))


def _geojson(config: Path | None, http: httpx.AsyncClient) -> Adapter:
    from adapters.geojson.client import GeoJsonSettings
    from adapters.geojson.service import GeoJsonAdapter

    settings = load_section_settings(GeoJsonSettings, config, "geojson")
    fetcher = HttpFetcher(http, timeout_s=settings.timeout_s, max_bytes=settings.max_bytes)
    return GeoJsonAdapter(settings, fetcher)


def _inventory(config: Path | None, http: httpx.AsyncClient) -> Adapter:
    from adapters.inventory.client import InventorySettings
    from adapters.inventory.service import InventoryAdapter

    settings = load_section_settings(InventorySettings, config, "inventory")
    return InventoryAdapter(settings)


ADAPTERS: dict[str, Callable[[Path | None, httpx.AsyncClient], Adapter]] = {
    "cap": _cap,
    "open311": _open311,
    "geojson": _geojson,
    "inventory": _inventory,
}


def shared_http_client() -> httpx.AsyncClient:
    """The one pooled client of an adapter service (aiohttp transport, faster when concurrent)."""
    try:
        from httpx_aiohttp import AiohttpTransport

        return httpx.AsyncClient(transport=AiohttpTransport())
    except ImportError:  # pragma: no cover - the default transport works, only slower
        return httpx.AsyncClient()


def build_adapter(name: str, config: Path | None, http: httpx.AsyncClient) -> Adapter:
    """The adapter called ``name``, configured from ``config``'s ``[name]`` table and env."""
    try:
        builder = ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}; choose from {', '.join(ADAPTERS)}") from None
    return builder(config, http)
