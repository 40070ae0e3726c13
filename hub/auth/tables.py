"""The authorization server's tables: OAuth clients, signing keys, revoked token ids, people,
their authorization codes, sessions and refresh tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from hub.db import HubTable
from schema.enums import OrgKind
from schema.storage import UTCDateTime

__all__ = [
    "AuthorizationCode",
    "OAuthClient",
    "Person",
    "PersonSession",
    "RefreshToken",
    "RevokedToken",
    "SigningKey",
]

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


class Person(HubTable, table=True):
    """A person's account at the hub: one organisation, roles that map to scopes (``roles``)."""

    __tablename__ = "people"

    username: str = Field(primary_key=True, max_length=64)  # the ``sub`` of their tokens
    display_name: str = Field(max_length=200)
    org: str = Field(max_length=40, index=True)
    org_kind: OrgKind = Field(sa_column=sa.Column(_ORG_KIND, nullable=False))
    district: str | None = Field(default=None, max_length=12)
    # Space-separated ``hub.auth.roles.Role`` values.
    roles: str = Field(max_length=200)
    # "$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>": never the password itself.
    password_hash: str = Field(max_length=255)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class AuthorizationCode(HubTable, table=True):
    """An authorization code (RFC 6749 §4.1.2), single-use and short-lived, stored hashed."""

    __tablename__ = "authorization_codes"

    code_hash: str = Field(primary_key=True, max_length=64)  # SHA-256 hex of the code
    client_id: str = Field(max_length=64)
    username: str = Field(max_length=64, index=True)
    redirect_uri: str = Field(max_length=1000)
    scope: str = Field(max_length=1000)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=10)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    # Set when exchanged; the session its tokens belong to (revoked if the code is replayed).
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    session_id: str | None = Field(default=None, max_length=64)


class PersonSession(HubTable, table=True):
    """One sign-in of a person at a public client: a family of rotated refresh tokens."""

    __tablename__ = "person_sessions"

    id: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=64, index=True)
    client_id: str = Field(max_length=64)
    scope: str = Field(max_length=1000)
    created_at: datetime = Field(sa_type=UTCDateTime)
    # Sign-out, a replayed code, a reused refresh token or a disabled person end it.
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str | None = Field(default=None, max_length=40)


class RefreshToken(HubTable, table=True):
    """A refresh token (stored hashed), with the access token issued alongside it."""

    __tablename__ = "refresh_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)  # SHA-256 hex of the token
    session_id: str = Field(max_length=64, index=True)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    # Set when exchanged for the next one: presenting it again revokes the session.
    rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    access_jti: str = Field(max_length=64)
    access_expires_at: datetime = Field(sa_type=UTCDateTime)
