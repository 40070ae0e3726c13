"""Settings every source (community node, adapter service) has: its area and whom it trusts."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from policies.static import TrustedCaller
from schema.geo import BBox
from schema.runtime.settings import ServiceSettings

__all__ = ["SourceSettings"]


class SourceSettings(ServiceSettings):
    """The district and area a source serves, its token issuer and its owner's policy file."""

    district: str = Field("110105", description="County-level GB/T 2260 code of the district")
    bbox: BBox | None = Field(None, description="Area served: {west, south, east, north}")
    token_issuer: str | None = Field(
        None, description="Issuer (iss) of the hub's access tokens; tokens must name it"
    )
    jwks_url: str | None = Field(None, description="Where the issuer publishes its signing keys")
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
    policy_file: Path | None = Field(
        None, description="The owner's Cedar policy file, added to the district baseline"
    )
    trusted_callers: list[TrustedCaller] = Field(
        default_factory=list,
        description="Static bearer tokens and the callers they stand for (development only;"
        " ignored when token_issuer is set)",
    )
