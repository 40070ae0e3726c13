"""Clients, signing keys and revocations in the hub database. Services flush; callers commit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.auth.errors import ClientExists, ClientNotFound, InvalidClientField
from hub.auth.roles import Role, scopes_of
from hub.auth.scopes import format_scopes, parse_scopes
from hub.auth.tables import OAuthClient, Person, RevokedToken, SigningKey
from hub.sealed import Sealer
from schema.enums import OrgKind
from schema.storage import utcnow

__all__ = [
    "create_client",
    "create_signing_key",
    "disable_client",
    "disabled_client_ids",
    "ensure_signing_key",
    "get_client",
    "hash_secret",
    "is_token_revoked",
    "list_clients",
    "live_revocations",
    "orgs_with_scope",
    "published_keys",
    "record_revocation",
    "rotate_keys",
    "verify_secret",
    "waste_secret_check",
]

# scrypt at n=2**14, r=8, p=1 costs 16 MiB and tens of milliseconds per check.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{2,63}")
_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_DISTRICT = re.compile(r"\d{6}")
# Organisations that always belong to one district.
_NEEDS_DISTRICT = frozenset({OrgKind.COMMUNITY, OrgKind.DEPARTMENT})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32
    )


def hash_secret(secret: str) -> str:
    """A salted scrypt hash of a client secret, with its parameters."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(secret, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# Checked against when the client is unknown, so that costs the same as a wrong secret.
_DUMMY_HASH = hash_secret(secrets.token_urlsafe(32))


def waste_secret_check(secret: str) -> None:
    """Spend the time of a real secret check (for unknown clients)."""
    verify_secret(secret, _DUMMY_HASH)


async def create_client(
    session: AsyncSession,
    *,
    org: str,
    org_kind: OrgKind,
    district: str | None,
    scopes: str | Iterable[str],
    client_id: str | None = None,
) -> tuple[OAuthClient, str]:
    """Register a client; returns it and its secret, which is shown this once and never stored."""
    allowed = parse_scopes(scopes)
    if not _ORG.fullmatch(org):
        raise InvalidClientField(f"organisation code {org!r} is not well-formed", field="org")
    if district is not None and not _DISTRICT.fullmatch(district):
        raise InvalidClientField(
            f"district {district!r} is not a 6-digit GB/T 2260 code", field="district"
        )
    if district is None and org_kind in _NEEDS_DISTRICT:
        raise InvalidClientField(f"a {org_kind.value} client needs a district", field="district")
    client_id = client_id or f"{org}-{secrets.token_hex(4)}"
    if not _CLIENT_ID.fullmatch(client_id):
        raise InvalidClientField(
            "client id must be 3-64 characters of A-Z a-z 0-9 . _ ~ -", field="client_id"
        )
    if await session.get(OAuthClient, client_id) is not None:
        raise ClientExists(f"client {client_id!r} already exists", client_id=client_id)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    client = OAuthClient(
        client_id=client_id,
        secret_hash=hash_secret(secret),
        org=org,
        org_kind=org_kind,
        district=district,
        scope=format_scopes(allowed),
        created_at=now,
        updated_at=now,
    )
    session.add(client)
    await session.flush()
    return client, secret


async def get_client(session: AsyncSession, client_id: str) -> OAuthClient | None:
    """The client with that id, if any."""
    return await session.get(OAuthClient, client_id)


async def orgs_with_scope(session: AsyncSession, scope: str) -> set[str]:
    """The organisations with an active client or person that may be granted ``scope``."""
    rows = await session.execute(select(OAuthClient).where(col(OAuthClient.disabled).is_(False)))
    orgs = {client.org for client in rows.scalars() if scope in client.scopes}
    staff = await session.execute(select(Person).where(col(Person.disabled).is_(False)))
    for person in staff.scalars():
        if scope in scopes_of(Role(r) for r in person.roles.split()):
            orgs.add(person.org)
    return orgs


async def list_clients(session: AsyncSession) -> list[OAuthClient]:
    """Every client, by organisation then id."""
    rows = await session.execute(
        select(OAuthClient).order_by(col(OAuthClient.org), col(OAuthClient.client_id))
    )
    return list(rows.scalars())


async def disable_client(session: AsyncSession, client_id: str) -> OAuthClient:
    """Disable a client: no new tokens; its live ones are refused everywhere within 5 s."""
    client = await session.get(OAuthClient, client_id)
    if client is None:
        raise ClientNotFound(f"no client {client_id!r}", client_id=client_id)
    if not client.disabled:
        client.disabled = True
        client.updated_at = utcnow()
        await session.flush()
    return client


async def create_signing_key(
    session: AsyncSession, *, sealer: Sealer, now: datetime | None = None
) -> SigningKey:
    """A new ES256 (P-256) signing key, named by its RFC 7638 thumbprint, stored sealed."""
    key = ECKey.generate_key("P-256", private=True)
    kid = key.thumbprint()
    jwk = {**key.as_dict(private=True), "kid": kid, "use": "sig", "alg": "ES256"}
    row = SigningKey(
        kid=kid, alg="ES256", private_jwk=sealer.seal_json(jwk), created_at=now or utcnow()
    )
    session.add(row)
    await session.flush()
    return row


async def _active_keys(session: AsyncSession) -> list[SigningKey]:
    rows = await session.execute(
        select(SigningKey)
        .where(col(SigningKey.retired_at).is_(None))
        .order_by(col(SigningKey.created_at).desc(), col(SigningKey.kid))
    )
    return list(rows.scalars())


async def ensure_signing_key(session: AsyncSession, *, sealer: Sealer) -> SigningKey:
    """The key that signs now (the newest active one), created if there is none."""
    active = await _active_keys(session)
    return active[0] if active else await create_signing_key(session, sealer=sealer)


async def rotate_keys(session: AsyncSession, *, grace_s: float, sealer: Sealer) -> SigningKey:
    """Start signing with a new key; retire the others; drop retired keys older than ``grace_s``."""
    now = utcnow()
    for row in await _active_keys(session):
        row.retired_at = now
    await session.execute(
        sa.delete(SigningKey).where(
            col(SigningKey.retired_at).is_not(None),
            col(SigningKey.retired_at) <= now - timedelta(seconds=grace_s),
        )
    )
    return await create_signing_key(session, sealer=sealer, now=now)


async def published_keys(session: AsyncSession, *, grace_s: float) -> list[SigningKey]:
    """Keys to publish, newest first: active ones, and retired ones their tokens may still need."""
    threshold = utcnow() - timedelta(seconds=grace_s)
    rows = await session.execute(
        select(SigningKey)
        .where(
            sa.or_(
                col(SigningKey.retired_at).is_(None),
                col(SigningKey.retired_at) > threshold,
            )
        )
        .order_by(col(SigningKey.created_at).desc(), col(SigningKey.kid))
    )
    return list(rows.scalars())


async def record_revocation(
    session: AsyncSession, *, jti: str, client_id: str, expires_at: datetime
) -> None:
    """Remember a revoked token id until the token expires; forget revocations that expired."""
    now = utcnow()
    await session.execute(sa.delete(RevokedToken).where(col(RevokedToken.expires_at) < now))
    if expires_at <= now or await session.get(RevokedToken, jti) is not None:
        return
    session.add(RevokedToken(jti=jti, client_id=client_id, expires_at=expires_at, revoked_at=now))
    await session.flush()


async def is_token_revoked(session: AsyncSession, jti: str) -> bool:
    """Whether the token id was revoked."""
    return await session.get(RevokedToken, jti) is not None


async def live_revocations(
    session: AsyncSession, *, revoked_since: datetime | None, expired_before: datetime
) -> list[RevokedToken]:
    """Revocations made since ``revoked_since`` (all without it) of tokens not yet expired."""
    query = select(RevokedToken).where(col(RevokedToken.expires_at) > expired_before)
    if revoked_since is not None:
        query = query.where(col(RevokedToken.revoked_at) >= revoked_since)
    rows = await session.execute(query)
    return list(rows.scalars())


async def disabled_client_ids(session: AsyncSession) -> list[str]:
    """The ids of every disabled client."""
    rows = await session.execute(
        select(OAuthClient.client_id).where(col(OAuthClient.disabled).is_(True))
    )
    return list(rows.scalars())
