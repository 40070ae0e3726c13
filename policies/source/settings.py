"""Settings every source (community node, adapter service) has: its area and whom it trusts."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

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
    # The district hub this source reports to: risk flags (nodes), audit anchors (every source)
    hub_url: str | None = Field(
        None,
        description="Base URL of the district hub; with hub_client_id and hub_client_secret,"
        " a node delivers raised flags to its /flags/inbox and every source reports its"
        " audit chain head to /audit/anchors",
    )
    hub_client_id: str | None = Field(
        None, description="This source's OAuth client at the hub (a node's needs scope risk:flag)"
    )
    hub_client_secret: SecretStr | None = Field(
        None, description="The secret of hub_client_id (never logged)"
    )
    hub_audience: str | None = Field(
        None, description="Audience (resource) to ask the hub's tokens for; none: the hub's own"
    )
    audit_anchor_s: float = Field(
        60.0,
        gt=0,
        description="Seconds between reports of the audit chain's new rows to the hub"
        " (with hub_url)",
    )
    audit_anchor_secret: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)),
        description="Signs (HMAC) this source's audit anchors; never sent. Set it to keep"
        " anchors verifiable after a restart",
    )
    policy_file: Path | None = Field(
        None, description="The owner's Cedar policy file, added to the district baseline"
    )
    trusted_callers: list[TrustedCaller] = Field(
        default_factory=list,
        description="Static bearer tokens and the callers they stand for (development only;"
        " ignored when token_issuer is set)",
    )

    @model_validator(mode="after")
    def _hub_client_complete(self) -> Self:
        hub = (self.hub_url, self.hub_client_id, self.hub_client_secret)
        if any(value is not None for value in hub) and not self.reports_to_hub:
            raise ValueError("hub_url, hub_client_id and hub_client_secret must be set together")
        return self

    @property
    def reports_to_hub(self) -> bool:
        """Whether this source has a hub and a client there (flags, audit anchors)."""
        return (
            self.hub_url is not None
            and self.hub_client_id is not None
            and self.hub_client_secret is not None
        )
