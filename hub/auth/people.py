"""People's accounts, their passwords (argon2id) and their sign-in sessions. Services flush.

A session is one sign-in at a public client (the web app): its authorization
code, then a family of refresh tokens, each exchanged once for the next one
(rotation) together with a short-lived access token. Ending a session (sign-out,
a replayed code, a reused refresh token, a disabled person or a new password)
revokes the access tokens it issued through the hub's revocation list
(``record_revocation``), which reaches every source within seconds.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.auth.errors import InvalidPersonField, PersonExists, PersonNotFound
from hub.auth.roles import Role, parse_roles, scopes_of
from hub.auth.service import record_revocation
from hub.auth.tables import AuthorizationCode, Person, PersonSession, RefreshToken
from schema.enums import OrgKind
from schema.storage import utcnow

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "IssuedRevocation",
    "PersonSnapshot",
    "create_person",
    "disable_person",
    "end_person_sessions",
    "end_session",
    "exchange_code",
    "get_person",
    "hash_password",
    "list_people",
    "load_code",
    "load_refresh_token",
    "reset_password",
    "rotate_refresh_token",
    "save_code",
    "save_refresh_token",
    "start_session",
    "token_hash",
    "verify_password",
    "waste_password_check",
]

MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_DISTRICT = re.compile(r"\d{6}")
# argon2-cffi's defaults are RFC 9106's second recommended option: argon2id, 64 MiB, t=3, p=4.
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``, with its salt and parameters."""
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored argon2id hash."""
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASH = hash_password(secrets.token_urlsafe(24))


def waste_password_check(password: str) -> None:
    """Spend the time of a real password check (an unknown username costs the same)."""
    verify_password(password, _DUMMY_HASH)


def token_hash(token: str) -> str:
    """How codes and refresh tokens are stored: the SHA-256 of the random value (hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PersonSnapshot:
    """A person as read from the database for one request."""

    username: str
    display_name: str
    org: str
    org_kind: OrgKind
    district: str | None
    roles: frozenset[Role]
    password_hash: str
    disabled: bool

    @classmethod
    def of(cls, row: Person) -> PersonSnapshot:
        return cls(
            row.username,
            row.display_name,
            row.org,
            row.org_kind,
            row.district,
            frozenset(Role(r) for r in row.roles.split()),
            row.password_hash,
            row.disabled,
        )

    @property
    def scopes(self) -> frozenset[str]:
        """The scopes this person's roles grant."""
        return scopes_of(self.roles)

    def get_user_id(self) -> str:
        return self.username


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidPersonField(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )


async def create_person(
    session: AsyncSession,
    *,
    username: str,
    display_name: str,
    org: str,
    org_kind: OrgKind,
    district: str | None,
    roles: str,
    password: str,
) -> Person:
    """Register a person in one organisation with ``roles``."""
    if not _USERNAME.fullmatch(username):
        raise InvalidPersonField(
            "username must be 3-64 characters of a-z 0-9 . _ - (lower case)", field="username"
        )
    if not _ORG.fullmatch(org):
        raise InvalidPersonField(f"organisation code {org!r} is not well-formed", field="org")
    if district is not None and not _DISTRICT.fullmatch(district):
        raise InvalidPersonField(
            f"district {district!r} is not a 6-digit GB/T 2260 code", field="district"
        )
    if district is None and org_kind in (OrgKind.COMMUNITY, OrgKind.DEPARTMENT):
        raise InvalidPersonField(
            f"a person of a {org_kind.value} needs a district", field="district"
        )
    parsed = parse_roles(roles, org_kind)
    _check_password(password)
    if not display_name.strip() or len(display_name) > 200:
        raise InvalidPersonField("a display name of 1-200 characters is needed", field="name")
    if await session.get(Person, username) is not None:
        raise PersonExists(f"person {username!r} already exists", username=username)
    now = utcnow()
    person = Person(
        username=username,
        display_name=display_name.strip(),
        org=org,
        org_kind=org_kind,
        district=district,
        roles=" ".join(sorted(r.value for r in parsed)),
        password_hash=hash_password(password),
        created_at=now,
        updated_at=now,
    )
    session.add(person)
    await session.flush()
    return person


async def get_person(session: AsyncSession, username: str) -> Person | None:
    """The person with that username, if any."""
    return await session.get(Person, username)


async def list_people(
    session: AsyncSession, *, after: str | None = None, limit: int = 100
) -> list[Person]:
    """A page of people by username, those after ``after``."""
    query = select(Person).order_by(col(Person.username)).limit(limit)
    if after is not None:
        query = query.where(col(Person.username) > after)
    return list((await session.execute(query)).scalars())


async def _require(session: AsyncSession, username: str) -> Person:
    person = await session.get(Person, username)
    if person is None:
        raise PersonNotFound(f"no person {username!r}", username=username)
    return person


@dataclass(frozen=True, slots=True)
class IssuedRevocation:
    """An access token revoked by ending a session: what the in-memory list needs."""

    jti: str
    expires_at: datetime


async def disable_person(session: AsyncSession, username: str) -> list[IssuedRevocation]:
    """Disable a person: no new sign-in or refresh; their sessions end, their tokens revoked."""
    person = await _require(session, username)
    if not person.disabled:
        person.disabled = True
        person.updated_at = utcnow()
    return await end_person_sessions(session, username, reason="disabled")


async def reset_password(
    session: AsyncSession, username: str, password: str
) -> list[IssuedRevocation]:
    """Set a new password; the person's sessions end."""
    person = await _require(session, username)
    _check_password(password)
    person.password_hash = hash_password(password)
    person.updated_at = utcnow()
    return await end_person_sessions(session, username, reason="password reset")


async def save_code(
    session: AsyncSession,
    *,
    code: str,
    client_id: str,
    username: str,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    code_challenge_method: str,
    ttl_s: int,
) -> None:
    """Store an authorization code (hashed) that may be exchanged once within ``ttl_s``."""
    now = utcnow()
    await session.execute(
        sa.delete(AuthorizationCode).where(col(AuthorizationCode.expires_at) < now)
    )
    session.add(
        AuthorizationCode(
            code_hash=token_hash(code),
            client_id=client_id,
            username=username,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    await session.flush()


async def load_code(session: AsyncSession, code: str) -> AuthorizationCode | None:
    """The stored code, used or not, expired or not."""
    return await session.get(AuthorizationCode, token_hash(code))


async def start_session(
    session: AsyncSession, *, session_id: str, username: str, client_id: str, scope: str
) -> PersonSession:
    """A new sign-in session."""
    row = PersonSession(
        id=session_id,
        username=username,
        client_id=client_id,
        scope=scope,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def exchange_code(session: AsyncSession, code_hash: str, session_id: str) -> bool:
    """Mark the code used by ``session_id``; ``False`` if it was used meanwhile."""
    result = await session.execute(
        sa.update(AuthorizationCode)
        .where(
            col(AuthorizationCode.code_hash) == code_hash,
            col(AuthorizationCode.used_at).is_(None),
        )
        .values(used_at=utcnow(), session_id=session_id)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def save_refresh_token(
    session: AsyncSession,
    *,
    token: str,
    session_id: str,
    ttl_s: int,
    access_jti: str,
    access_expires_at: datetime,
) -> None:
    """Store a refresh token (hashed) of ``session_id`` with the access token issued with it."""
    now = utcnow()
    session.add(
        RefreshToken(
            token_hash=token_hash(token),
            session_id=session_id,
            issued_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
            access_jti=access_jti,
            access_expires_at=access_expires_at,
        )
    )
    await session.flush()


async def load_refresh_token(
    session: AsyncSession, token: str
) -> tuple[RefreshToken, PersonSession] | None:
    """The stored refresh token and its session, if the token was ever issued."""
    row = await session.get(RefreshToken, token_hash(token))
    if row is None:
        return None
    family = await session.get(PersonSession, row.session_id)
    return None if family is None else (row, family)


async def rotate_refresh_token(session: AsyncSession, token_hash_: str) -> bool:
    """Mark a refresh token exchanged; ``False`` if it was exchanged meanwhile (reuse)."""
    result = await session.execute(
        sa.update(RefreshToken)
        .where(col(RefreshToken.token_hash) == token_hash_, col(RefreshToken.rotated_at).is_(None))
        .values(rotated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def end_session(
    session: AsyncSession, session_id: str, *, reason: str
) -> list[IssuedRevocation]:
    """End a session: its refresh tokens stop working, its live access tokens are revoked."""
    family = await session.get(PersonSession, session_id)
    if family is None:
        return []
    if family.revoked_at is None:
        family.revoked_at = utcnow()
        family.revoked_reason = reason[:40]
    now = utcnow()
    rows = await session.execute(
        select(RefreshToken).where(
            col(RefreshToken.session_id) == session_id, col(RefreshToken.access_expires_at) > now
        )
    )
    revoked = [IssuedRevocation(r.access_jti, r.access_expires_at) for r in rows.scalars()]
    for item in revoked:
        await record_revocation(
            session, jti=item.jti, client_id=family.client_id, expires_at=item.expires_at
        )
    await session.flush()
    return revoked


async def end_person_sessions(
    session: AsyncSession, username: str, *, reason: str
) -> list[IssuedRevocation]:
    """End every live session of a person."""
    rows = await session.execute(
        select(PersonSession.id).where(
            col(PersonSession.username) == username, col(PersonSession.revoked_at).is_(None)
        )
    )
    revoked: list[IssuedRevocation] = []
    for session_id in list(rows.scalars()):
        revoked += await end_session(session, session_id, reason=reason)
    return revoked
