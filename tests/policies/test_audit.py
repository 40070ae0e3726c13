"""The hash-chained audit log: concurrent appends stay one linear chain; any change is found."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from node.app import MIGRATIONS
from node.tables import AUDIT_LOG
from policies import Caller
from policies.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditWriter,
    append,
    row_hash,
    verify,
    verify_chain,
)
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, migrate

CALLER = Caller(
    org="110105001002",
    org_kind=OrgKind.COMMUNITY,
    scopes=frozenset({"resources:read"}),
    client_id="app",
    subject="user",
    actor="hub",
)


def _entry(i: int) -> AuditEntry:
    return AuditEntry(
        action="disclose",
        owner="110105001001",
        caller=CALLER,
        record_type="Resource",
        count=i,
        decision={"shown": i, "approximated": ["quantity"], "hidden": ["address"]},
        purpose=f"互助 {i}",
    )


@pytest.fixture(scope="module")
async def db(database: DatabaseUnderTest) -> AsyncIterator[Database]:
    await migrate(MIGRATIONS, database.url)
    db = Database(database.url)
    yield db
    await db.dispose()


async def _rows(db: Database) -> list[sa.RowMapping]:
    async with db.sessions() as session:
        result = await session.execute(sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.seq))
        return list(result.mappings().all())


async def test_concurrent_appends_form_one_linear_chain(
    db: Database, database: DatabaseUnderTest
) -> None:
    async def one(i: int) -> int:
        async with db.transaction() as session:
            record = await append(session, AUDIT_LOG, _entry(i))
            await asyncio.sleep(0)  # let the others pile up on the lock
        return record.seq

    seqs = await asyncio.gather(*(one(i) for i in range(40)))
    assert sorted(seqs) == list(range(1, 41))
    rows = await _rows(db)
    assert [row["seq"] for row in rows] == list(range(1, 41))
    assert rows[0]["prev_hash"] == GENESIS_HASH
    for previous, row in itertools.pairwise(rows):
        assert row["prev_hash"] == previous["hash"]
    assert len({row["hash"] for row in rows}) == 40
    assert sorted(row["count"] for row in rows) == list(range(40))
    assert rows[0]["actor"] == "hub"
    report = await verify_chain(database.url)
    assert (report.rows, report.first_bad) == (40, None)


async def test_a_rolled_back_append_leaves_no_gap(
    db: Database, database: DatabaseUnderTest
) -> None:
    before = len(await _rows(db))

    async def fails_after_appending() -> None:
        async with db.transaction() as session:
            await append(session, AUDIT_LOG, _entry(99))
            raise RuntimeError("the disclosure failed")

    with pytest.raises(RuntimeError):
        await fails_after_appending()
    async with db.transaction() as session:
        record = await append(session, AUDIT_LOG, _entry(100))
    assert record.seq == before + 1
    assert await verify(database.url) is None


async def _execute(db: Database, statement: str) -> None:
    async with db.transaction() as session:
        await session.execute(sa.text(statement))


async def test_verify_names_the_first_changed_row(
    db: Database, database: DatabaseUnderTest
) -> None:
    assert await verify(database.url) is None
    await _execute(db, "UPDATE audit_log SET count = count + 1 WHERE seq = 7")
    await _execute(db, "UPDATE audit_log SET purpose = 'x' WHERE seq = 9")
    report = await verify_chain(database.url)
    assert (report.first_bad, report.rows) == (7, 6)
    assert report.problem == "the row's content does not match its hash"
    await _execute(db, "UPDATE audit_log SET count = count - 1 WHERE seq = 7")
    assert await verify(database.url) == 9


async def test_verify_finds_rehashed_rows_deleted_rows_and_relinked_rows(
    database: DatabaseUnderTest,
) -> None:
    db = Database(database.url)
    try:
        await _execute(db, "DELETE FROM audit_log")
        async with db.transaction() as session:
            for i in range(5):
                await append(session, AUDIT_LOG, _entry(i))
        assert await verify(database.url) is None
        # A forger who recomputes the changed row's own hash still breaks the next link.
        rows = await _rows(db)
        forged = dict(rows[1]) | {"purpose": "nothing to see"}
        forged["hash"] = row_hash(forged)
        async with db.transaction() as session:
            await session.execute(
                sa.update(AUDIT_LOG)
                .where(AUDIT_LOG.c.seq == 2)
                .values(purpose=forged["purpose"], hash=forged["hash"])
            )
        report = await verify_chain(database.url)
        assert (report.first_bad, report.problem) == (
            3,
            "prev_hash does not match the previous row's hash",
        )
        await _execute(db, "DELETE FROM audit_log WHERE seq >= 2")
        async with db.transaction() as session:
            for i in range(3):
                await append(session, AUDIT_LOG, _entry(i))
        await _execute(db, "DELETE FROM audit_log WHERE seq = 3")
        report = await verify_chain(database.url)
        assert report.first_bad == 4
        assert report.problem == "expected seq 3, found 4 (a row is missing or moved)"
    finally:
        await db.dispose()


async def test_the_writer_commits_concurrent_requests_together_in_order(
    db: Database, database: DatabaseUnderTest
) -> None:
    writer = AuditWriter(db, AUDIT_LOG)
    before = len(await _rows(db))
    # 40 requests at once, 3 rows each: all queue before the first commit starts.
    await asyncio.gather(*(writer.append([_entry(i), _entry(i), _entry(i)]) for i in range(40)))
    assert writer.commits == 1
    rows = (await _rows(db))[before:]
    assert [r["count"] for r in rows] == [i for i in range(40) for _ in range(3)]
    # Later requests start a new commit, and the chain stays one.
    await writer.append([_entry(99)])
    assert writer.commits == 2
    # (Earlier tests in this module tamper with older rows; these must link up.)
    rows = (await _rows(db))[before:]
    assert len(rows) == 121
    for previous, row in itertools.pairwise(rows):
        assert row["seq"] == previous["seq"] + 1
        assert row["prev_hash"] == previous["hash"]


async def test_a_failed_commit_fails_its_requests_and_the_next_one_succeeds(
    db: Database, database: DatabaseUnderTest
) -> None:
    columns = (sa.Column(c.name, c.type) for c in AUDIT_LOG.columns)
    missing = sa.Table("no_such_audit_log", sa.MetaData(), *columns)
    broken = AuditWriter(db, missing)
    with pytest.raises(sa.exc.SQLAlchemyError):
        await asyncio.gather(broken.append([_entry(1)]), broken.append([_entry(2)]))
    assert broken.commits == 0
    writer = AuditWriter(db, AUDIT_LOG)
    await writer.append([_entry(3)])
    assert writer.commits == 1


async def test_a_call_from_a_higher_hub_is_audited_with_its_whole_chain_of_actors(
    db: Database, database: DatabaseUnderTest
) -> None:
    chained = Caller(
        org="110100400001", org_kind=OrgKind.DEPARTMENT, scopes=frozenset({"resources:read"}),
        client_id="city-app", subject="city-user", actor="hub-110105",
        actors=("hub-110105", "hub-110100"), district="110100",
    )  # fmt: skip
    async with db.transaction() as session:
        record = await append(
            session,
            AUDIT_LOG,
            AuditEntry(action="disclose", owner="110105001001", caller=chained, count=1),
        )
    row = next(r for r in await _rows(db) if r["seq"] == record.seq)
    assert row["actor"] == "hub-110105 < hub-110100"
    assert row["hash"] == row_hash(row)  # the chain covers the actor as written
