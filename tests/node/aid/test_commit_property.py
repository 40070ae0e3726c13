"""Property: concurrent offers, commits, cancels, declines and returns never lose or make units.

Against a real node database built by the migrations (SQLite and PostgreSQL), a provider
with one reusable resource answers several requests; hypothesis draws batches of steps
(accepts, repeated accepts with the same message id, cancels, declines, dispatches,
receipts and returns), each batch run concurrently, each step in its own transaction as
the node runs them. After every batch ``available`` stays within ``[0, quantity]`` and
every unit is accounted for: ``available`` plus the units held by the requests equals
``quantity``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import DBAPIError, IntegrityError

from node.aid import service
from node.aid.service import AidParty
from node.app import MIGRATIONS
from node.tables import AID, AUDIT_LOG, FLAGS, TABLES
from policies.caller import Caller
from schema.aid import HOLDING, AidError, AidStep, AidStepKind
from schema.enums import AidRequestStatus, OrgKind
from schema.errors import LinliError
from schema.records.resource import ResourceCreate
from schema.runtime.db import Database
from schema.scopes import Scope
from schema.storage import utcnow
from schema.store.service import create_record
from schema.store.specs import bind_specs
from tests.conftest import DatabaseUnderTest, migrate

PROVIDER = "110105002001"
REQUESTERS = ("110105001001", "110105003001", "110105004001")
SPECS = bind_specs(TABLES)
PARTY = AidParty(
    org=PROVIDER,
    contact="值班室",
    aid=AID,
    outbox=FLAGS,
    resources=SPECS["Resource"].table,
    requests=SPECS["AidRequest"].table,
    volunteers=SPECS["Volunteer"].table,
    audit_log=AUDIT_LOG,
)
STAFF = Caller(
    org=PROVIDER,
    org_kind=OrgKind.COMMUNITY,
    scopes=frozenset({Scope.AID_RESPOND}),
    client_id="staff",
    subject="staff",
)
REQUESTS = 4
KINDS = ("accept", "accept_again", "cancel", "decline", "dispatch", "receive", "return")


@pytest.fixture(scope="module")
async def db(database: DatabaseUnderTest) -> AsyncIterator[Database]:
    await migrate(MIGRATIONS, database.url)
    built = Database(database.url)
    yield built
    await built.dispose()


def step(
    case: dict[str, Any], kind: AidStepKind, *, message_id: uuid.UUID | None = None, **fields: Any
) -> AidStep:
    requester = case["requester"]
    return AidStep(
        message_id=message_id or uuid.uuid4(),
        kind=kind,
        request_id=case["request_id"],
        requester=requester,
        provider=PROVIDER,
        sender=fields.pop("sender", requester),
        resource_id=case["resource_id"],
        resource_kind="portable_generator",
        unit="台",
        at=utcnow(),
        **fields,
    )


async def setup(db: Database, quantity: int, wants: list[int]) -> tuple[str, list[dict[str, Any]]]:
    """A resource of ``quantity`` and one offered request per entry of ``wants``."""
    async with db.transaction() as session:
        resource = await create_record(
            session,
            SPECS["Resource"],
            ResourceCreate(kind="portable_generator", name="发电机", quantity=quantity,
                           available=quantity, unit="台", address="车库"),
        )  # fmt: skip
    resource_id = f"Resource:{PROVIDER}:{resource.id}"
    cases = []
    for n, wanted in enumerate(wants):
        want = min(wanted, quantity)  # an offer above what is available is refused at once
        case = {
            "request_id": f"AidRequest:{REQUESTERS[n % 3]}:{uuid.uuid4().hex[:10]}",
            "requester": REQUESTERS[n % 3],
            "resource_id": resource_id,
            "want": want,
            "accept": uuid.uuid4(),
        }
        async with db.transaction() as session:
            await service.receive_step(
                session, PARTY, step(case, AidStepKind.REQUEST, quantity=want)
            )
            await service.take_step(session, PARTY, STAFF, request_id=case["request_id"],
                                    kind=AidStepKind.OFFER, quantity=want, resource_id=None,
                                    note="")  # fmt: skip
        cases.append(case)
    return resource.id, cases


async def run(db: Database, case: dict[str, Any], kind: str) -> None:
    """One step in its own transaction; refusals and lost races are part of the game."""
    try:
        async with db.transaction() as session:
            if kind in ("accept", "accept_again"):
                # The same message id every time: a repeat must commit nothing more.
                accept = step(case, AidStepKind.ACCEPT, message_id=case["accept"],
                              quantity=case["want"])  # fmt: skip
                await service.receive_step(session, PARTY, accept)
            elif kind == "cancel":
                await service.receive_step(session, PARTY, step(case, AidStepKind.CANCEL))
            elif kind == "receive":
                got = step(case, AidStepKind.RECEIVE, quantity=case["want"])
                await service.receive_step(session, PARTY, got)
            elif kind == "return":
                await service.receive_step(session, PARTY, step(case, AidStepKind.RETURN))
            else:
                taken = AidStepKind.DECLINE if kind == "decline" else AidStepKind.DISPATCH
                await service.take_step(session, PARTY, STAFF, request_id=case["request_id"],
                                        kind=taken, quantity=None, resource_id=None,
                                        note="")  # fmt: skip
    except (AidError, IntegrityError, DBAPIError, LinliError):
        pass  # refused, or lost a race for the same message / the database lock


async def accounted(db: Database, local_id: str, cases: list[dict[str, Any]]) -> None:
    resources = PARTY.resources
    async with db.sessions() as session:
        row = (
            await session.execute(
                sa.select(resources.quantity, resources.available).where(resources.id == local_id)
            )
        ).one()
        held = 0
        commits = 0
        for case in cases:
            found = await service.load_case(session, PARTY, case["request_id"])
            assert found is not None
            if found.status in HOLDING:
                held += found.committed
            else:
                assert found.committed == 0, found
            kinds = [s["kind"] for s in found.steps]
            assert kinds.count("accept") <= 1
            assert kinds.count("commit") <= 1
            commits += kinds.count("commit")
            assert found.committed in (0, case["want"])
            if found.status is AidRequestStatus.COMMITTED:
                assert kinds[-1] == "commit"
    assert 0 <= row.available <= row.quantity
    assert row.available + held == row.quantity, (row, held)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quantity=st.integers(min_value=1, max_value=6),
    wants=st.lists(st.integers(min_value=1, max_value=4), min_size=2, max_size=REQUESTS),
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, REQUESTS - 1), st.sampled_from(KINDS)), max_size=6),
        min_size=1,
        max_size=5,
    ),
)
async def test_units_are_never_lost_or_made(
    db: Database, quantity: int, wants: list[int], batches: list[list[tuple[int, str]]]
) -> None:
    local_id, cases = await setup(db, quantity, wants)
    await accounted(db, local_id, cases)
    for batch in batches:
        await asyncio.gather(*(run(db, cases[n % len(cases)], kind) for n, kind in batch))
        await accounted(db, local_id, cases)


async def test_fifty_concurrent_commits_never_exceed_ten_units(db: Database) -> None:
    local_id, cases = await setup(db, 10, [1] * 50)
    await asyncio.gather(*(run(db, case, "accept") for case in cases))
    await accounted(db, local_id, cases)
    async with db.sessions() as session:
        statuses = [(await service.load_case(session, PARTY, c["request_id"])) for c in cases]
    committed = [c for c in statuses if c is not None and c.status is AidRequestStatus.COMMITTED]
    assert len(committed) <= 10
    refused = [c for c in statuses if c is not None and c.status is AidRequestStatus.DECLINED]
    # Every accept that got through either committed or was refused with a reason.
    for case in refused:
        assert case.steps[-1]["reason"] == "AID_ABOVE_AVAILABLE"
    resources = PARTY.resources
    async with db.sessions() as session:
        left = (
            await session.execute(sa.select(resources.available).where(resources.id == local_id))
        ).scalar_one()
    assert left == 10 - len(committed)
