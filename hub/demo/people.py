"""The demo's people: one account per role, who sign in at the web app with a password."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from hub.auth import people
from hub.auth.roles import Role
from hub.demo.seed import DISTRICT, EMERGENCY_OFFICE, EXAMPLE_FLAG_COMMUNITY
from schema.enums import OrgKind
from schema.runtime.db import Database

__all__ = ["DEMO_PEOPLE", "DemoPerson", "ensure_people"]

HUB_ADMINS = "110105400009"


@dataclass(frozen=True, slots=True)
class DemoPerson:
    """One demo account."""

    username: str
    name: str
    org: str
    org_kind: OrgKind
    role: Role


DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(
        "staff", "社区工作人员 张敏 (community staff)", EXAMPLE_FLAG_COMMUNITY,
        OrgKind.COMMUNITY, Role.COMMUNITY_STAFF,
    ),
    DemoPerson(
        "duty", "区应急局值班员 王芳 (duty officer)", EMERGENCY_OFFICE,
        OrgKind.DEPARTMENT, Role.DUTY_OFFICER,
    ),
    DemoPerson(
        "verifier", "区应急局核查员 李伟 (verifier)", EMERGENCY_OFFICE,
        OrgKind.DEPARTMENT, Role.VERIFIER,
    ),
    DemoPerson(
        "wall-screen", "指挥中心大屏 (wall screen, viewer)", EMERGENCY_OFFICE,
        OrgKind.DEPARTMENT, Role.VIEWER,
    ),
    DemoPerson(
        "admin", "枢纽管理员 (administrator)", HUB_ADMINS, OrgKind.DEPARTMENT, Role.ADMINISTRATOR
    ),
)  # fmt: skip


async def ensure_people(database_url: str, known: Mapping[str, str]) -> dict[str, str]:
    """Create the demo's people, or give a new password to those whose password was lost.

    ``known`` and the result map usernames to passwords (kept in the demo's state file).
    """
    passwords: dict[str, str] = {}
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            for person in DEMO_PEOPLE:
                existing = await people.get_person(session, person.username)
                password = known.get(person.username)
                if existing is not None and password is not None:
                    passwords[person.username] = password
                    continue
                password = secrets.token_urlsafe(9)
                if existing is None:
                    await people.create_person(
                        session,
                        username=person.username,
                        display_name=person.name,
                        org=person.org,
                        org_kind=person.org_kind,
                        district=DISTRICT,
                        roles=person.role.value,
                        password=password,
                    )
                else:
                    await people.reset_password(session, person.username, password)
                passwords[person.username] = password
    finally:
        await db.dispose()
    return passwords
