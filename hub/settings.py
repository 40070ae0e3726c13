"""Settings of the district hub (env ``LINLI_*`` or a TOML file)."""

from __future__ import annotations

from pydantic import Field

from schema.runtime.settings import ServiceSettings

__all__ = ["HubSettings"]


class HubSettings(ServiceSettings):
    """Who the hub is, how it issues tokens and how it calls its sources."""

    port: int = Field(8000, ge=1, le=65535, description="Port to listen on")
    database_url: str = Field(
        "sqlite+aiosqlite:///./linli-hub.db", description="SQLAlchemy async URL of the hub database"
    )
    hub_id: str = Field("hub-110105", description="Source id of this hub")
    hub_name: str = Field("朝阳区应急数据枢纽 Chaoyang district hub", description="Display name")
    district: str = Field("110105", description="County-level GB/T 2260 code of the district")
    issuer: str = Field(
        "http://127.0.0.1:8000",
        description="Public base URL of the hub; the `iss` of every token it signs",
    )
    access_token_ttl_s: int = Field(300, ge=30, le=3600, description="Lifetime of access tokens")
    source_timeout_s: float = Field(2.0, gt=0, description="Timeout of one call to one source")
    deadline_s: float = Field(5.0, gt=0, description="Overall deadline of one federated query")
