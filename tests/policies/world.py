"""A small district to test policies in: one owner, its neighbour, strangers and departments."""

from __future__ import annotations

from policies import Caller, Owner
from schema.enums import OrgKind

DISTRICT = "110105"
OTHER_DISTRICT = "110106"

OWNER = Owner(
    org="110105001001",
    kind=OrgKind.COMMUNITY,
    district=DISTRICT,
    neighbours=frozenset({"110105001002", "110105001003"}),
)

READ_SCOPES = frozenset(
    {
        "incidents:read",
        "resources:read",
        "shelters:read",
        "volunteers:read",
        "risk:verify",
        "alerts:read",
        "aid:request",
        "aid:respond",
    }
)
ALL_SCOPES = READ_SCOPES | {"pii:read"}


def caller(
    org: str,
    kind: OrgKind,
    scopes: frozenset[str] = ALL_SCOPES,
    *,
    district: str | None = DISTRICT,
    client_id: str = "client",
) -> Caller:
    """A caller of ``org`` holding ``scopes``."""
    return Caller(
        org=org,
        org_kind=kind,
        scopes=scopes,
        client_id=client_id,
        subject=f"{client_id}@{org}",
        district=district,
    )


SELF = caller(OWNER.org, OrgKind.COMMUNITY)
SELF_NO_SCOPES = caller(OWNER.org, OrgKind.COMMUNITY, frozenset())
NEIGHBOUR = caller("110105001002", OrgKind.COMMUNITY)
STRANGER = caller("110105009001", OrgKind.COMMUNITY)  # same district, not a neighbour
DEPARTMENT = caller("110105000100", OrgKind.DEPARTMENT)
DEPARTMENT_NO_PII = caller("110105000101", OrgKind.DEPARTMENT, READ_SCOPES)
OTHER_DEPARTMENT = caller("110106000100", OrgKind.DEPARTMENT, district=OTHER_DISTRICT)
PUBLIC = caller("public-web", OrgKind.PUBLIC, district=None)
