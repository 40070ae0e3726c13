"""The re-match's bounds and stops, on the hub database built by its migrations.

A pass claims at most ``limit`` due requests, longest waiting first, and sets each one's
next pass an interval later; requests taken, cancelled or past their needed-by time drop
out. One request's pass notifies at most ``limit`` owners not asked before, each once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from hub.aid import service
from hub.aid.tables import AidCaseRow, AidMatchingRow, AidNotifiedRow
from hub.app import MIGRATIONS
from schema.aid import AidStep, AidStepKind
from schema.enums import OrgKind
from schema.runtime.db import Database
from schema.scopes import Scope
from tests.conftest import DatabaseUnderTest, migrate

A = "110105001001"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(fresh_database: DatabaseUnderTest) -> AsyncIterator[Database]:
    await migrate(MIGRATIONS, fresh_database.url)
    database = Database(fresh_database.url)
    yield database
    await database.dispose()


def request_step(local: str, *, needed_by: datetime | None = None) -> AidStep:
    return AidStep(
        message_id=uuid.uuid4(),
        kind=AidStepKind.REQUEST,
        request_id=f"AidRequest:{A}:{local}",
        requester=A,
        sender=A,
        resource_kind="portable_generator",
        quantity=1,
        unit="台",
        needed_by=needed_by,
        at=NOW,
    )


async def add_case(
    db: Database, local: str, *, due_in_s: float, status: str = "requested",
    provider: str = "", needed_by: datetime | None = None,
) -> str:  # fmt: skip
    step = request_step(local, needed_by=needed_by)
    async with db.transaction() as session:
        session.add(
            AidCaseRow(
                request_id=step.request_id, requester=A, provider=provider,
                resource_kind=step.resource_kind, unit=step.unit, requested=1, status=status,
                steps=[step.history_entry()], requested_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
        session.add(
            AidMatchingRow(
                request_id=step.request_id, org_kind="community", client_id="node-a",
                subject="person-7", district="110105", until=needed_by,
                due_at=NOW + timedelta(seconds=due_in_s),
            )
        )  # fmt: skip
    return step.request_id


async def count(db: Database, statement: str, **params: object) -> int:
    async with db.sessions() as session:
        return int((await session.execute(sa.text(statement), params)).scalar_one())


async def test_a_pass_claims_at_most_its_limit_longest_waiting_first(db: Database) -> None:
    first = await add_case(db, "first", due_in_s=-30)
    second = await add_case(db, "second", due_in_s=-20)
    third = await add_case(db, "third", due_in_s=-10)
    later = await add_case(db, "later", due_in_s=+30)
    taken = await add_case(db, "taken", due_in_s=-40, provider="110105002001", status="offered")
    cancelled = await add_case(db, "cancelled", due_in_s=-40, status="cancelled")
    late = await add_case(db, "late", due_in_s=-40, needed_by=NOW - timedelta(seconds=1))
    async with db.transaction() as session:
        due = await service.due_for_rematch(session, now=NOW, limit=2, interval_s=60)
    assert [d.request_id for d in due] == [first, second]
    asking = due[0].caller
    assert (asking.org, asking.org_kind, asking.client_id, asking.subject, asking.district) == (
        A, OrgKind.COMMUNITY, "node-a", "person-7", "110105"
    )  # fmt: skip
    assert asking.scopes == {Scope.RESOURCES_READ, Scope.VOLUNTEERS_READ, Scope.AID_REQUEST}
    assert due[0].step.kind is AidStepKind.REQUEST
    assert due[0].step.provider is None
    # Taken, cancelled and late requests are no longer matched at all.
    async with db.sessions() as session:
        left = set((await session.execute(sa.select(AidMatchingRow.request_id))).scalars())
    assert left == {first, second, third, later}
    assert not left & {taken, cancelled, late}
    # The claimed two are next due an interval later: the next pass takes the third only.
    async with db.transaction() as session:
        again = await service.due_for_rematch(session, now=NOW, limit=2, interval_s=60)
    assert [d.request_id for d in again] == [third]
    async with db.transaction() as session:
        at_interval = await service.due_for_rematch(
            session, now=NOW + timedelta(seconds=61), limit=10, interval_s=60
        )
    assert [d.request_id for d in at_interval] == [later, first, second, third]


async def test_a_pass_notifies_at_most_its_limit_of_owners_each_once(db: Database) -> None:
    request_id = await add_case(db, "r", due_in_s=0)
    owners = ["110105002001", "110105003001", "110105004001"]
    async with db.transaction() as session:
        assert await service.rematch(session, request_id, owners, now=NOW, limit=2) == owners[:2]
    async with db.transaction() as session:
        assert await service.rematch(session, request_id, owners, now=NOW, limit=2) == owners[2:]
    async with db.transaction() as session:
        assert await service.rematch(session, request_id, owners, now=NOW, limit=2) == []
    assert await count(db, "SELECT count(*) FROM aid_notified WHERE request_id = :r",
                       r=request_id) == 3  # fmt: skip
    events = "SELECT count(*) FROM aid_events WHERE request_id = :r AND type = 'aid.request'"
    assert await count(db, events, r=request_id) == 3
    outbox = "SELECT count(*) FROM flag_outbox WHERE flag_id = :r AND path = '/aid/steps'"
    assert await count(db, outbox, r=request_id) == 3

    # Another replica that read the asked owners before this one wrote them cannot tell the
    # same owner again: the key refuses it and its whole transaction goes.
    async def tell_again() -> None:
        async with db.transaction() as session:
            session.add(AidNotifiedRow(request_id=request_id, owner=owners[0], notified_at=NOW))
            await session.flush()

    with pytest.raises(IntegrityError):
        await tell_again()
    assert await count(db, events, r=request_id) == 3


async def test_a_request_taken_since_its_claim_is_not_passed_on(db: Database) -> None:
    request_id = await add_case(db, "t", due_in_s=0, provider="110105002001", status="offered")
    late = await add_case(db, "l", due_in_s=0, needed_by=NOW)
    for rid in (request_id, late):
        async with db.transaction() as session:
            assert await service.rematch(session, rid, ["110105003001"], now=NOW, limit=5) == []
    assert await count(db, "SELECT count(*) FROM aid_notified") == 0
