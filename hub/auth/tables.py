"""The authorization server's tables: OAuth clients, signing keys, revoked token ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from hub.db import HubTable
from schema.enums import OrgKind
from schema.storage import UTCDateTime

__all__ = ["OAuthClient", "RevokedToken", "SigningKey"]

# Values as plain strings, like the node's enums: a new kind needs no type migration.
_ORG_KIND = sa.Enum(
    OrgKind,
    native_enum=False,
    create_constraint=False,
    length=32,
    values_callable=lambda members: [m.value for m in members],
)


class OAuthClient(HubTable, table=True):
    """A confidential client of one organisation (client credentials grant only)."""

    __tablename__ = "oauth_clients"

    client_id: str = Field(primary_key=True, max_length=64)
    # "scrypt$<n>$<r>$<p>$<salt>$<hash>": never the secret itself.
    secret_hash: str = Field(max_length=255)
    org: str = Field(max_length=40, index=True)
    org_kind: OrgKind = Field(sa_column=sa.Column(_ORG_KIND, nullable=False))
    district: str | None = Field(default=None, max_length=12)
    # Space-separated allowed scopes, as in RFC 7591's ``scope`` client metadata.
    scope: str = Field(max_length=1000)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def scopes(self) -> frozenset[str]:
        """The scopes this client may be granted."""
        return frozenset(self.scope.split())


class SigningKey(HubTable, table=True):
    """An ES256 key pair of the hub; the newest key without ``retired_at`` signs.

    ``private_jwk`` holds the private JWK sealed with ``LINLI_SECRETS_KEY``
    (``enc:v1:...``, see ``hub.sealed``), or the JWK object itself when it was
    stored without a key (development, or a row from before sealing).
    """

    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True, max_length=64)
    alg: str = Field(default="ES256", max_length=16)
    private_jwk: dict[str, Any] | str = Field(sa_type=sa.JSON)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class RevokedToken(HubTable, table=True):
    """A revoked access token's ``jti``, kept until the token would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64, index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime = Field(sa_type=UTCDateTime)
