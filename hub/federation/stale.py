"""The last good answer of each source to each query, for when the source is down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson

from hub.federation.tables import StaleAnswerRow
from schema.runtime.db import Database

__all__ = ["StaleStore", "hash_of"]


def hash_of(payload: dict[str, Any]) -> int:
    """A cheap fingerprint of an answer, to skip rewriting unchanged ones."""
    return hash(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))


log = logging.getLogger("linli.hub.stale")


class StaleStore:
    """Answers in memory (bounded, least recently used out), written behind to the database."""

    def __init__(
        self, db: Database, *, capacity: int = 10_000, flush_interval_s: float = 2.0
    ) -> None:
        self.db = db
        self.capacity = capacity
        self.flush_interval_s = flush_interval_s
        self._memory: OrderedDict[tuple[str, str], tuple[dict[str, Any], datetime]] = OrderedDict()
        self._dirty: set[tuple[str, str]] = set()
        self._persisted: dict[tuple[str, str], tuple[int, datetime]] = {}

    def put(self, source_id: str, signature: str, payload: dict[str, Any], as_of: datetime) -> None:
        """Keep the last good answer; it is written to the database by the background flush."""
        key = (source_id, signature)
        self._memory[key] = (payload, as_of)
        self._memory.move_to_end(key)
        self._dirty.add(key)
        while len(self._memory) > self.capacity:
            old, _ = self._memory.popitem(last=False)
            self._dirty.discard(old)
            self._persisted.pop(old, None)

    async def get(self, source_id: str, signature: str) -> tuple[dict[str, Any], datetime] | None:
        """The stored answer and its time, from memory or the database."""
        key = (source_id, signature)
        if key in self._memory:
            return self._memory[key]
        async with self.db.sessions() as session:
            row = await session.get(StaleAnswerRow, (source_id, signature))
        if row is None:
            return None
        self._memory[key] = (row.payload, row.as_of)
        return row.payload, row.as_of

    async def flush(self) -> int:
        """Write the answers changed since the last flush; how many."""
        changed: list[tuple[tuple[str, str], int, dict[str, Any], datetime]] = []
        for key in self._dirty:
            if key not in self._memory:
                continue
            payload, as_of = self._memory[key]
            digest = hash_of(payload)  # here, off the request path
            known = self._persisted.get(key)
            # An unchanged answer is rewritten at most once a minute: enough for "as of".
            if known is None or known[0] != digest or (as_of - known[1]).total_seconds() > 60:
                changed.append((key, digest, payload, as_of))
        self._dirty.clear()
        if not changed:
            return 0
        try:
            async with self.db.transaction() as session:
                for (source_id, signature), _, payload, as_of in changed:
                    await session.merge(
                        StaleAnswerRow(
                            source_id=source_id, signature=signature, payload=payload, as_of=as_of
                        )
                    )
        except BaseException:
            # Not written (a failure, or cancelled at shutdown): written with the next round.
            self._dirty.update(key for key, *_ in changed)
            raise
        for key, digest, _, as_of in changed:
            self._persisted[key] = (digest, as_of)
        return len(changed)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[StaleStore]:
        """Flush in the background while the hub runs, and once more at the end."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(self.flush_interval_s)
                try:
                    await self.flush()
                except Exception:  # a failed flush is retried with the next round
                    log.exception("stale-answer flush failed")

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.flush()
