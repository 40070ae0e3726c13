"""Who is asking: the caller every read and write is checked against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from schema.enums import OrgKind

__all__ = [
    "Authenticator",
    "Caller",
    "Relation",
    "is_superior_division",
    "relation_of",
    "superior_divisions",
]

import enum


class Relation(enum.StrEnum):
    """How the caller's organisation relates to the data's owner."""

    SELF = "self"
    NEIGHBOUR = "neighbour"
    DISTRICT = "district"  # a department of the owner's district
    SUPERIOR = "superior"  # a department of a higher level: the owner's city or province
    PUBLIC = "public"  # anyone else


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: a client of one organisation with a set of scopes."""

    org: str
    org_kind: OrgKind
    scopes: frozenset[str]
    client_id: str
    subject: str
    actor: str | None = None  # the hub, when it calls on the caller's behalf (RFC 8693 ``act``)
    district: str | None = None  # county-level division code of the caller's organisation
    token_id: str | None = field(default=None, compare=False)
    expires_at: float | None = field(default=None, compare=False)  # the token's ``exp``
    # Every actor of the token, the latest first: ``act``, ``act.act``, ... (RFC 8693 §4.1).
    actors: tuple[str, ...] = ()
    # The token's ``iss``: whose revocation list can refuse it (this hub's or a trusted one's).
    issuer: str | None = field(default=None, compare=False)

    def has_scope(self, scope: str) -> bool:
        """Whether the token grants ``scope``."""
        return scope in self.scopes

    @property
    def person(self) -> str | None:
        """The person signed in (the token's ``sub``), when the subject is not the client itself."""
        return self.subject if self.subject and self.subject != self.client_id else None


def relation_of(
    caller: Caller, *, owner: str, owner_district: str, neighbours: frozenset[str]
) -> Relation:
    """The relation of ``caller`` to the owner of some data."""
    if caller.org == owner:
        return Relation.SELF
    if caller.org_kind is OrgKind.COMMUNITY and caller.org in neighbours:
        return Relation.NEIGHBOUR
    if caller.org_kind in (OrgKind.DEPARTMENT, OrgKind.HUB) and caller.district == owner_district:
        return Relation.DISTRICT
    if caller.org_kind in (OrgKind.DEPARTMENT, OrgKind.HUB) and is_superior_division(
        caller.district, owner_district
    ):
        return Relation.SUPERIOR
    return Relation.PUBLIC


def is_superior_division(higher: str | None, district: str) -> bool:
    """Whether GB/T 2260 code ``higher`` is the city (``XXXX00``) or province (``XX0000``) of
    the county-level ``district``."""
    return bool(higher) and higher in superior_divisions(district)


def superior_divisions(district: str) -> tuple[str, ...]:
    """The city (``XXXX00``) and province (``XX0000``) codes above a county-level code."""
    if len(district) != 6 or not district.isdigit() or district.endswith("00"):
        return ()
    city, province = district[:4] + "00", district[:2] + "0000"
    return (city, province) if city != province else (province,)


class Authenticator(Protocol):
    """Turns the ``Authorization`` header of a request into a ``Caller``."""

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller, or raise ``schema.errors.Unauthenticated``."""
        ...
