"""Settings of an adapter service (env ``LINLI_*`` or a TOML file), common to every adapter."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from policies.source.settings import SourceSettings
from policies.static import is_placeholder
from schema.enums import OrgKind

__all__ = ["AdapterServiceSettings"]


class AdapterServiceSettings(SourceSettings):
    """Who the adapter service is, whose data it holds, and whom it trusts."""

    adapter_id: str = Field(
        "adapter-cap", pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", description="Source id"
    )
    adapter_name: str = Field("CAP 预警接入 CAP alerts", description="Shown in the well-known doc")
    org_code: str = Field(
        "110105000100", description="Division code of the department that owns the data"
    )
    org_kind: OrgKind = Field(OrgKind.DEPARTMENT, description="Kind of the owning organisation")
    public_url: str = Field(
        "http://127.0.0.1:8001", description="Base URL others reach this service at (feed links)"
    )
    token_audience: str | None = Field(
        None, description="aud of tokens meant for this service; default: the adapter id"
    )

    @property
    def source_id(self) -> str:
        return self.adapter_id

    @property
    def audience(self) -> str:
        # The hub mints every source's tokens with aud = the source id, as for nodes.
        return self.token_audience or self.adapter_id

    @model_validator(mode="after")
    def _tokens_in_production(self) -> Self:
        if not self.production:
            return self
        if not (self.token_issuer and self.jwks_url):
            raise ValueError("production needs token_issuer and jwks_url (OAuth token checks)")
        for caller in self.trusted_callers:
            if is_placeholder(caller.token):
                raise ValueError(f"trusted caller {caller.client_id!r} has a placeholder token")
        return self
