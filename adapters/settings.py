"""Settings of an adapter service (env ``LINLI_*`` or a TOML file), common to every adapter."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from policies.static import TrustedCaller, is_placeholder
from schema.enums import OrgKind
from schema.geo import BBox
from schema.runtime.settings import ServiceSettings

__all__ = ["AdapterServiceSettings"]


class AdapterServiceSettings(ServiceSettings):
    """Who the adapter service is, whose data it holds, and whom it trusts."""

    adapter_id: str = Field(
        "adapter-cap", pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$", description="Source id"
    )
    adapter_name: str = Field("CAP 预警接入 CAP alerts", description="Shown in the well-known doc")
    org_code: str = Field(
        "110105000100", description="Division code of the department that owns the data"
    )
    org_kind: OrgKind = Field(OrgKind.DEPARTMENT, description="Kind of the owning organisation")
    district: str = Field("110105", description="County-level GB/T 2260 code of the district")
    bbox: BBox | None = Field(None, description="Area served: {west, south, east, north}")
    public_url: str = Field(
        "http://127.0.0.1:8001", description="Base URL others reach this service at (feed links)"
    )
    policy_file: str | None = Field(None, description="The owner's Cedar policy file")
    token_issuer: str | None = Field(None, description="The hub's OAuth issuer (iss)")
    jwks_url: str | None = Field(None, description="The hub's JWKS URL")
    revocations_url: str | None = Field(
        None,
        description="Where the token issuer publishes revoked tokens and disabled clients;"
        " none: <token_issuer>/oauth/revocations",
    )
    revocation_poll_s: float = Field(
        2.0,
        gt=0,
        le=3.0,
        description="Seconds between polls of the revocation list (with the hub's refresh,"
        " a revocation is refused here within 5 s)",
    )
    token_audience: str | None = Field(
        None, description="aud of tokens meant for this service; default: the adapter id"
    )
    trusted_callers: list[TrustedCaller] = Field(
        default_factory=list,
        description="Static bearer tokens (development only; ignored when token_issuer is set)",
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
