"""Settings of a community node (env ``LINLI_*`` or a TOML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, model_validator

from schema.enums import OrgKind
from schema.geo import BBox
from schema.runtime.settings import ServiceSettings

__all__ = ["NodeSettings", "TrustedCaller", "check_authentication"]

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
    token_issuer: str | None = Field(
        None, description="Issuer (iss) of the hub's access tokens; tokens must name it"
    )
    jwks_url: str | None = Field(None, description="Where the issuer publishes its signing keys")
    policy_file: Path | None = Field(
        None, description="The owner's Cedar policy file, added to the district baseline"
    )

    @property
    def source_id(self) -> str:
        return self.node_id or self.org_code

    @property
    def verifies_tokens(self) -> bool:
        """Whether the node checks OAuth access tokens from the hub."""
        return self.token_issuer is not None and self.jwks_url is not None

    @model_validator(mode="after")
    def _callers_are_authenticated_properly(self) -> Self:
        check_authentication(self)
        return self


def check_authentication(settings: NodeSettings) -> None:
    """Refuse settings a node cannot authenticate callers safely with."""
    if (settings.token_issuer is None) != (settings.jwks_url is None):
        raise ValueError("token_issuer and jwks_url must be set together")
    if settings.production:
        for caller in settings.trusted_callers:
            if caller.token.lower() in PLACEHOLDER_TOKENS or len(caller.token) < 24:
                raise ValueError(
                    f"trusted caller {caller.client_id!r} has a placeholder or short token;"
                    " and production accepts no static tokens at all"
                )
        if settings.trusted_callers:
            raise ValueError(
                "trusted_callers (static bearer tokens) are for development and tests only;"
                " production nodes accept OAuth access tokens (set token_issuer and jwks_url)"
            )
        if not settings.verifies_tokens:
            raise ValueError("a production node needs token_issuer and jwks_url")
