"""Static bearer tokens: callers trusted by configuration, for development and tests only.

Node and adapter services accept them when no token issuer is configured (or next to
one, in development); production settings refuse them.
"""

from __future__ import annotations

import hmac

from pydantic import BaseModel, Field

from policies.caller import Caller
from schema.enums import OrgKind
from schema.errors import Unauthenticated

__all__ = ["StaticTokenAuthenticator", "TrustedCaller", "bearer_token", "is_placeholder"]

_PLACEHOLDERS = frozenset({"", "changeme", "change-me", "secret", "dev", "test"})
MIN_SECRET_LENGTH = 24


def is_placeholder(secret: str) -> bool:
    """A secret too weak for production: a well-known placeholder or under 24 characters."""
    return secret.lower() in _PLACEHOLDERS or len(secret) < MIN_SECRET_LENGTH


class TrustedCaller(BaseModel):
    """A caller trusted by a static bearer token (the stopgap before OAuth)."""

    token: str = Field(min_length=1)
    org: str
    org_kind: OrgKind = OrgKind.COMMUNITY
    scopes: list[str] = Field(default_factory=list)
    client_id: str = "static"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ``Unauthenticated``."""
    if not authorization:
        raise Unauthenticated("missing Authorization header", reason="TOKEN_MISSING")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("expected 'Authorization: Bearer <token>'", reason="TOKEN_MISSING")
    return token


class StaticTokenAuthenticator:
    """Accepts only the bearer tokens of the given trusted callers."""

    def __init__(self, callers: list[TrustedCaller], *, district: str) -> None:
        self._callers = [
            (
                caller.token.encode(),
                Caller(
                    org=caller.org,
                    org_kind=caller.org_kind,
                    scopes=frozenset(caller.scopes),
                    client_id=caller.client_id,
                    subject=caller.client_id,
                    district=district,
                ),
            )
            for caller in callers
        ]

    def __len__(self) -> int:
        return len(self._callers)

    def find(self, token: str) -> Caller | None:
        """The trusted caller whose token this is, if any."""
        presented = token.strip().encode()
        found: Caller | None = None
        for known, caller in self._callers:
            # Compare against every token, so timing says nothing about which matched.
            if hmac.compare_digest(known, presented):
                found = caller
        return found

    async def authenticate(self, authorization: str | None) -> Caller:
        """The trusted caller whose token is presented."""
        caller = self.find(bearer_token(authorization))
        if caller is None:
            raise Unauthenticated("unknown bearer token", reason="TOKEN_UNKNOWN")
        return caller
