"""Volunteers committed to aid requests at the provider's node: check, book, release.

A booking holds a volunteer for one request's window until the request is returned,
cancelled or declined. ``book_volunteers`` runs in the transaction of the accept that
commits them: it first locks the named Volunteer rows one by one in id order (a write that
changes nothing: a row lock on PostgreSQL, the database's write lock on SQLite), then checks
that each is live, has the skill, is ``available`` and holds no booking whose window
overlaps, and inserts the bookings. Two concurrent commits that name the same volunteer
serialise on the lock, and the second sees the first's booking.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from schema.aid import (
    AidKindMismatch,
    AidNotOwner,
    AidPerson,
    AidQuantityInvalid,
    AidRecordRetired,
    AidVolunteerBooked,
    AidVolunteerUnavailable,
)
from schema.codes import has_skill
from schema.enums import VolunteerAvailability
from schema.ids import GlobalId, InvalidGlobalId
from schema.storage import utcnow

__all__ = ["book_volunteers", "check_volunteers", "release_volunteers"]


def _locals(org: str, volunteer_ids: Sequence[str]) -> dict[str, str]:
    """Local id -> global id of each named volunteer, if all are this community's own."""
    found: dict[str, str] = {}
    for volunteer_id in volunteer_ids:
        try:
            parsed = GlobalId.parse(volunteer_id)
        except InvalidGlobalId as exc:
            raise AidNotOwner(str(exc), resourceId=volunteer_id) from exc
        if parsed.type != "Volunteer" or parsed.owner != org:
            raise AidNotOwner(f"{volunteer_id} is not a volunteer of {org}",
                              resourceId=volunteer_id)  # fmt: skip
        if parsed.local in found:
            raise AidQuantityInvalid(f"{volunteer_id} is named twice", quantity=len(volunteer_ids),
                                     limit=len(found))  # fmt: skip
        found[parsed.local] = volunteer_id
    return found


async def check_volunteers(
    session: AsyncSession,
    *,
    org: str,
    volunteers: Any,
    bookings: sa.Table,
    request_id: str,
    volunteer_ids: Sequence[str],
    skill: str,
    window: tuple[datetime, datetime],
    lock: bool = False,
) -> list[AidPerson]:
    """The named volunteers, if each may be committed to ``request_id`` for ``window``."""
    if not volunteer_ids:
        raise AidQuantityInvalid("an offer of volunteers names at least one", quantity=0, limit=1)
    ids = _locals(org, volunteer_ids)
    if lock:
        for local in sorted(ids):
            await session.execute(
                sa.update(volunteers)
                .where(volunteers.id == local)
                .values(version=volunteers.version)
                .execution_options(synchronize_session=False)
            )
    rows = {
        row.id: row
        for row in (
            await session.execute(
                sa.select(
                    volunteers.id,
                    volunteers.name,
                    volunteers.phone,
                    volunteers.skills,
                    volunteers.availability,
                    volunteers.retired_at,
                ).where(volunteers.id.in_(list(ids)))
            )
        ).all()
    }
    people: list[AidPerson] = []
    for local, volunteer_id in ids.items():
        row = rows.get(local)
        if row is None:
            raise AidNotOwner(f"{volunteer_id} is not a volunteer of {org}",
                              resourceId=volunteer_id)  # fmt: skip
        if row.retired_at is not None:
            raise AidRecordRetired(f"{volunteer_id} is retired", resourceId=volunteer_id)
        if not has_skill(list(row.skills or []), skill):
            raise AidKindMismatch(f"{volunteer_id} lacks the skill {skill!r}", kind=skill,
                                  resourceKind=volunteer_id)  # fmt: skip
        if VolunteerAvailability(row.availability) is not VolunteerAvailability.AVAILABLE:
            raise AidVolunteerUnavailable(
                f"{volunteer_id} is {VolunteerAvailability(row.availability).value}",
                volunteerId=volunteer_id,
                availability=VolunteerAvailability(row.availability).value,
            )
        people.append(AidPerson(volunteer_id=volunteer_id, name=row.name, phone=row.phone))
    start, end = window
    clash = (
        await session.execute(
            sa.select(bookings.c.volunteer_id, bookings.c.request_id)
            .where(
                bookings.c.volunteer_id.in_(list(ids.values())),
                bookings.c.request_id != request_id,
                bookings.c.released_at.is_(None),
                bookings.c.window_from < end,
                bookings.c.window_to > start,
            )
            .limit(1)
        )
    ).first()
    if clash is not None:
        raise AidVolunteerBooked(
            f"{clash.volunteer_id} is committed to {clash.request_id} in an overlapping window",
            volunteerId=clash.volunteer_id,
            requestId=clash.request_id,
        )
    return people


async def book_volunteers(
    session: AsyncSession,
    *,
    org: str,
    volunteers: Any,
    bookings: sa.Table,
    request_id: str,
    volunteer_ids: Sequence[str],
    skill: str,
    window: tuple[datetime, datetime],
) -> list[AidPerson]:
    """Commit the named volunteers to ``request_id`` for ``window``, atomically; or refused."""
    people = await check_volunteers(
        session,
        org=org,
        volunteers=volunteers,
        bookings=bookings,
        request_id=request_id,
        volunteer_ids=volunteer_ids,
        skill=skill,
        window=window,
        lock=True,
    )
    held = set(
        (
            await session.execute(
                sa.select(bookings.c.volunteer_id).where(bookings.c.request_id == request_id)
            )
        ).scalars()
    )
    now = utcnow()
    fresh = [
        {"volunteer_id": person.volunteer_id, "request_id": request_id,
         "window_from": window[0], "window_to": window[1], "booked_at": now, "released_at": None}
        for person in people
        if person.volunteer_id not in held
    ]  # fmt: skip
    if fresh:
        await session.execute(sa.insert(bookings), fresh)
    return people


async def release_volunteers(session: AsyncSession, bookings: sa.Table, request_id: str) -> None:
    """Release every volunteer booked for ``request_id`` (returned, cancelled or declined)."""
    await session.execute(
        sa.update(bookings)
        .where(bookings.c.request_id == request_id, bookings.c.released_at.is_(None))
        .values(released_at=utcnow())
    )
