"""Settings of a community node (env ``LINLI_*`` or a TOML file)."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator

from schema.enums import OrgKind
from schema.geo import BBox
from schema.runtime.settings import ServiceSettings

__all__ = ["NodeSettings", "TrustedCaller"]


PLACEHOLDER_TOKENS = {"", "changeme", "change-me", "secret", "dev", "test"}


class TrustedCaller(BaseModel):
    """A caller this node trusts by a static bearer token (the stopgap before OAuth)."""

    token: str = Field(min_length=1)
    org: str
    org_kind: OrgKind = OrgKind.COMMUNITY
    scopes: list[str] = Field(default_factory=list)
    client_id: str = "static"


class NodeSettings(ServiceSettings):
    """Who this node is and whom it trusts."""

    node_id: str | None = Field(None, description="Source id; defaults to org_code")
    org_code: str = Field("110105001001", description="Division code of the owning community")
    org_name: str = Field("示例社区 Example Community", description="Community name")
    district: str = Field("110105", description="County-level GB/T 2260 code of the district")
    neighbours: list[str] = Field(default_factory=list, description="Division codes of neighbours")
    bbox: BBox | None = Field(None, description="Area served: {west, south, east, north}")
    trusted_callers: list[TrustedCaller] = Field(
        default_factory=list,
        description="Static bearer tokens and the callers they stand for (development only)",
    )

    @property
    def source_id(self) -> str:
        return self.node_id or self.org_code

    @model_validator(mode="after")
    def _no_placeholder_tokens_in_production(self) -> Self:
        if self.production:
            for caller in self.trusted_callers:
                if caller.token.lower() in PLACEHOLDER_TOKENS or len(caller.token) < 24:
                    raise ValueError(
                        f"trusted caller {caller.client_id!r} has a placeholder or short token;"
                        " production needs 24+ random characters"
                    )
        return self
