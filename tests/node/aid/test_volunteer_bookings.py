"""Volunteers committed by their community: never double-booked, released, idempotent.

Against a real node database built by the migrations (SQLite and PostgreSQL), the
provider's node gets several requests for first aiders whose windows overlap, offers the
same volunteer to each, and the requesters' accepts arrive concurrently, each in its own
transaction as the node runs them (one that loses the database's lock is delivered again,
as the hub does). Exactly one commits; every other is refused with AID_VOLUNTEER_BOOKED.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from node.aid import service
from node.aid.service import AidCase
from node.app import MIGRATIONS
from node.tables import AID
from schema.aid import AidError, AidStep, AidStepKind
from schema.enums import AidRequestStatus, VolunteerAvailability
from schema.records.volunteer import VolunteerCreate
from schema.runtime.db import Database
from schema.storage import utcnow
from schema.store.service import create_record
from tests.conftest import DatabaseUnderTest, migrate
from tests.node.aid.test_commit_property import PARTY, PROVIDER, REQUESTERS, SPECS, STAFF

START = datetime(2026, 12, 1, 8, 0, tzinfo=utcnow().tzinfo)


@pytest.fixture(scope="module")
async def db(database: DatabaseUnderTest) -> AsyncIterator[Database]:
    await migrate(MIGRATIONS, database.url)
    built = Database(database.url)
    yield built
    await built.dispose()


async def volunteer(db: Database, name: str, **fields: Any) -> str:
    async with db.transaction() as session:
        made = await create_record(
            session,
            SPECS["Volunteer"],
            VolunteerCreate(name=name, phone="13800000001", skills=["急救", "driver"], **fields),
        )
    return f"Volunteer:{PROVIDER}:{made.id}"


def step(case: dict[str, Any], kind: AidStepKind, **fields: Any) -> AidStep:
    return AidStep(
        message_id=fields.pop("message_id", uuid.uuid4()),
        kind=kind,
        request_id=case["request_id"],
        requester=case["requester"],
        provider=PROVIDER,
        sender=fields.pop("sender", case["requester"]),
        resource_kind="volunteers",
        unit="人",
        at=utcnow(),
        **fields,
    )


async def requested(
    db: Database, n: int, *, hours: tuple[int, int], number: int = 1
) -> dict[str, Any]:
    """A request for first aiders from ``START + hours[0]`` to ``START + hours[1]``."""
    requester = REQUESTERS[n % 3]
    case = {
        "request_id": f"AidRequest:{requester}:{uuid.uuid4().hex[:10]}",
        "requester": requester,
        "accept": uuid.uuid4(),
    }
    window = {"window_from": START + timedelta(hours=hours[0]),
              "window_to": START + timedelta(hours=hours[1])}  # fmt: skip
    async with db.transaction() as session:
        await service.receive_step(
            session,
            PARTY,
            step(case, AidStepKind.REQUEST, quantity=number, skill="first_aid", **window),
        )
    return case


async def offer(db: Database, case: dict[str, Any], volunteers: list[str]) -> AidCase:
    async with db.transaction() as session:
        return await service.take_step(session, PARTY, STAFF, request_id=case["request_id"],
                                       kind=AidStepKind.OFFER, quantity=None, resource_id=None,
                                       note="", volunteer_ids=volunteers)  # fmt: skip


async def accept(db: Database, case: dict[str, Any], count: int = 1) -> AidCase:
    """The requester's accept (the same message id each time), redelivered until it lands."""
    for _ in range(50):
        try:
            async with db.transaction() as session:
                got = await service.receive_step(
                    session, PARTY,
                    step(case, AidStepKind.ACCEPT, message_id=case["accept"], quantity=count),
                )  # fmt: skip
            assert got.case is not None
            return got.case
        except (IntegrityError, DBAPIError):
            await asyncio.sleep(0.05)  # lost the database's lock: the hub delivers it again
    raise AssertionError("the accept never landed")


async def booked(db: Database, volunteer_id: str) -> list[tuple[str, bool]]:
    bookings = AID.bookings
    async with db.sessions() as session:
        rows = await session.execute(
            sa.select(bookings.c.request_id, bookings.c.released_at.is_(None))
            .where(bookings.c.volunteer_id == volunteer_id)
            .order_by(bookings.c.booked_at)
        )
        return [(r[0], bool(r[1])) for r in rows]


async def test_concurrent_commits_of_one_volunteer_to_overlapping_windows_book_once(
    db: Database,
) -> None:
    wang = await volunteer(db, "王芳")
    # Eight requests whose windows all overlap 10:00-11:00; one that does not overlap.
    cases = [await requested(db, n, hours=(n % 3, 3 + n % 3)) for n in range(8)]
    later = await requested(db, 9, hours=(6, 9))
    for case in [*cases, later]:
        assert (await offer(db, case, [wang])).status is AidRequestStatus.OFFERED
    answers = await asyncio.gather(*(accept(db, case) for case in cases))
    statuses = sorted(a.status.value for a in answers)
    assert statuses == ["committed"] + ["declined"] * 7
    for answer in answers:
        if answer.status is AidRequestStatus.DECLINED:
            assert answer.steps[-1]["kind"] == "refuse"
            assert answer.steps[-1]["reason"] == "AID_VOLUNTEER_BOOKED"
            assert answer.committed == 0
    [winner] = [a for a in answers if a.status is AidRequestStatus.COMMITTED]
    assert winner.committed == 1
    assert winner.steps[-1]["volunteer_ids"] == [wang]
    assert await booked(db, wang) == [(winner.request_id, True)]
    # A window that does not overlap books the same volunteer.
    assert (await accept(db, later)).status is AidRequestStatus.COMMITTED
    assert sorted(await booked(db, wang)) == sorted(
        [(winner.request_id, True), (later["request_id"], True)]
    )


async def test_a_repeated_accept_books_once_and_a_cancel_releases(db: Database) -> None:
    li = await volunteer(db, "李明")
    first = await requested(db, 0, hours=(20, 22))
    await offer(db, first, [li])
    assert (await accept(db, first)).status is AidRequestStatus.COMMITTED
    async with db.transaction() as session:
        again = await service.receive_step(
            session, PARTY, step(first, AidStepKind.ACCEPT, message_id=first["accept"], quantity=1)
        )
    assert again.status == "duplicate"
    assert await booked(db, li) == [(first["request_id"], True)]
    second = await requested(db, 1, hours=(21, 23))
    # Offered while booked: refused at once, nothing offered.
    with pytest.raises(AidError) as refused:
        await offer(db, second, [li])
    assert refused.value.code == "AID_VOLUNTEER_BOOKED"
    async with db.transaction() as session:
        await service.receive_step(session, PARTY, step(first, AidStepKind.CANCEL))
    assert await booked(db, li) == [(first["request_id"], False)]  # released, kept as history
    await offer(db, second, [li])
    assert (await accept(db, second)).status is AidRequestStatus.COMMITTED


async def test_a_volunteer_not_available_is_never_committed(db: Database) -> None:
    on_duty = await volunteer(db, "赵强", availability=VolunteerAvailability.ON_DUTY)
    case = await requested(db, 0, hours=(30, 31))
    with pytest.raises(AidError) as refused:
        await offer(db, case, [on_duty])
    assert refused.value.code == "AID_VOLUNTEER_UNAVAILABLE"
    # Available when offered, unavailable by the time the accept arrives: refused, not booked.
    zhou = await volunteer(db, "周敏")
    await offer(db, case, [zhou])
    table = PARTY.volunteers
    async with db.transaction() as session:
        await session.execute(
            sa.update(table)
            .where(table.id == zhou.rsplit(":", 1)[1])
            .values(availability=VolunteerAvailability.UNAVAILABLE)
        )
    answer = await accept(db, case)
    assert answer.status is AidRequestStatus.DECLINED
    assert answer.steps[-1]["reason"] == "AID_VOLUNTEER_UNAVAILABLE"
    assert await booked(db, zhou) == []
