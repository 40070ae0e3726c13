"""The district hub: one GraphQL API over every source, the OAuth 2.0 authorization server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.db import metadata
from hub.settings import HubSettings
from schema import SCHEMA_VERSION
from schema.runtime.db import Database
from schema.runtime.service import service_app, wrap

__all__ = ["MIGRATIONS", "create_app", "metadata"]

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: HubSettings) -> Any:
    """The hub's ASGI app."""
    db = Database(settings.database_url)
    app = service_app(
        name="hub",
        title=f"Linli hub {settings.hub_id} {settings.hub_name}",
        settings=settings,
        db=db,
        migrations=MIGRATIONS,
    )

    @app.get("/.well-known/linli-node")
    async def well_known() -> dict[str, Any]:
        return {
            "id": settings.hub_id,
            "kind": "hub",
            "name": settings.hub_name,
            "division_code": settings.district,
            "bbox": None,
            "schema_version": SCHEMA_VERSION,
            "capabilities": [],
        }

    return wrap(app, settings)
