"""People's roles and the scopes each grants: the one mapping, documented in the README.

    role             organisation  scopes (besides the viewer's)
    viewer           any           incidents:read resources:read shelters:read
                                   alerts:read risk:read (the viewer's own)
    community-staff  community     volunteers:read risk:flag records:write
                                   aid:request aid:respond
    duty-officer     department    risk:verify emergency:declare
    verifier         department    risk:verify
    administrator    any           admin audit:read

A person's scopes are the union over their roles. A wall screen (大屏) is a
``viewer`` account: read-only, it stays signed in by refresh-token rotation.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from hub.auth.errors import InvalidPersonField
from schema.enums import OrgKind
from schema.scopes import Scope

__all__ = ["ROLE_ORG_KINDS", "ROLE_SCOPES", "Role", "parse_roles", "scopes_of"]


class Role(enum.StrEnum):
    """What a person does; each maps to scopes (``ROLE_SCOPES``)."""

    VIEWER = "viewer"
    COMMUNITY_STAFF = "community-staff"
    DUTY_OFFICER = "duty-officer"
    VERIFIER = "verifier"
    ADMINISTRATOR = "administrator"


_READ = frozenset(
    {
        Scope.INCIDENTS_READ,
        Scope.RESOURCES_READ,
        Scope.SHELTERS_READ,
        Scope.ALERTS_READ,
        Scope.RISK_READ,
    }
)

ROLE_SCOPES: Mapping[Role, frozenset[str]] = MappingProxyType(
    {
        Role.VIEWER: _READ,
        Role.COMMUNITY_STAFF: _READ
        | {
            Scope.VOLUNTEERS_READ,
            Scope.RISK_FLAG,
            Scope.RECORDS_WRITE,
            Scope.AID_REQUEST,
            Scope.AID_RESPOND,
        },
        Role.DUTY_OFFICER: _READ | {Scope.RISK_VERIFY, Scope.EMERGENCY_DECLARE},
        Role.VERIFIER: _READ | {Scope.RISK_VERIFY},
        Role.ADMINISTRATOR: _READ | {Scope.ADMIN, Scope.AUDIT_READ},
    }
)
"""The scopes each role grants."""

ROLE_ORG_KINDS: Mapping[Role, frozenset[OrgKind] | None] = MappingProxyType(
    {
        Role.VIEWER: None,
        Role.COMMUNITY_STAFF: frozenset({OrgKind.COMMUNITY}),
        Role.DUTY_OFFICER: frozenset({OrgKind.DEPARTMENT}),
        Role.VERIFIER: frozenset({OrgKind.DEPARTMENT}),
        Role.ADMINISTRATOR: None,
    }
)
"""The kinds of organisation a role belongs to (``None``: any)."""


def parse_roles(roles: str | Iterable[str], org_kind: OrgKind) -> frozenset[Role]:
    """The roles named (space- or comma-separated), each checked against the organisation kind."""
    names = roles.replace(",", " ").split() if isinstance(roles, str) else list(roles)
    if not names:
        raise InvalidPersonField("a person needs at least one role", field="roles")
    known = {r.value: r for r in Role}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise InvalidPersonField(
            f"unknown role(s): {' '.join(unknown)}; roles are {' '.join(known)}", field="roles"
        )
    parsed = frozenset(known[name] for name in names)
    for role in sorted(parsed):
        kinds = ROLE_ORG_KINDS[role]
        if kinds is not None and org_kind not in kinds:
            allowed = " or ".join(sorted(k.value for k in kinds))
            raise InvalidPersonField(
                f"role {role.value} is for a {allowed} organisation, not a {org_kind.value}",
                field="roles",
            )
    return parsed


def scopes_of(roles: Iterable[Role]) -> frozenset[str]:
    """The scopes a person with ``roles`` may be granted."""
    return frozenset().union(*(ROLE_SCOPES[role] for role in roles))
