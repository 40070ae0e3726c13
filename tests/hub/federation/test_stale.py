"""The stale store: last good answers survive a flush that fails or is cancelled at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from hub.app import MIGRATIONS
from hub.federation.stale import StaleStore
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, migrate

NOW = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)
ANSWER = {"edges": [{"node": {"id": "Resource:110105001001:a", "name": "发电机"}}]}


class InterruptedOnce(Database):
    """A database whose first write transaction is cancelled, as at a hub's shutdown."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.interrupted = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if not self.interrupted:
            self.interrupted = True
            raise asyncio.CancelledError
        async with super().transaction() as session:
            yield session


@pytest.fixture
async def db(fresh_database: DatabaseUnderTest) -> AsyncIterator[InterruptedOnce]:
    await migrate(MIGRATIONS, fresh_database.url)
    db = InterruptedOnce(fresh_database.url)
    yield db
    await db.dispose()


async def _stored(url: str) -> tuple[dict[str, Any], datetime] | None:
    """What a hub started anew over the same database would serve."""
    fresh = Database(url)
    try:
        return await StaleStore(fresh).get("110105001001", "q1")
    finally:
        await fresh.dispose()


async def test_a_cancelled_flush_keeps_its_answers_for_the_next(
    db: InterruptedOnce, fresh_database: DatabaseUnderTest
) -> None:
    store = StaleStore(db)
    store.put("110105001001", "q1", ANSWER, NOW)
    with pytest.raises(asyncio.CancelledError):
        await store.flush()
    assert await _stored(fresh_database.url) is None
    assert await store.flush() == 1  # the final flush at shutdown writes it
    assert await _stored(fresh_database.url) == (ANSWER, NOW)


async def test_an_unchanged_answer_is_not_rewritten_within_a_minute(
    db: InterruptedOnce,
) -> None:
    db.interrupted = True
    store = StaleStore(db)
    store.put("110105001001", "q1", ANSWER, NOW)
    assert await store.flush() == 1
    store.put("110105001001", "q1", dict(ANSWER), NOW.replace(second=30))
    assert await store.flush() == 0
    store.put("110105001001", "q1", {"edges": []}, NOW.replace(second=40))
    assert await store.flush() == 1
