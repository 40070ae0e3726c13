"""Decoding a pack and the gate that back-pressures bursts (contract: ``node.sensors.ingest``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from node.sensors.errors import IngestBusy, SenmlInvalid
from node.sensors.senml import ResolvedRecord, parse_pack, resolve_pack
from schema.errors import InvalidInput
from schema.storage import utcnow

__all__ = ["IngestGate", "decode_pack"]


def decode_pack(
    pack: bytes | Sequence[Any], *, max_records: int, now: datetime | None = None
) -> list[ResolvedRecord]:
    """The resolved records of ``pack``; ``SenmlInvalid`` or ``SENML_TOO_MANY_RECORDS``."""
    if isinstance(pack, bytes | bytearray):
        records = parse_pack(bytes(pack))
    elif isinstance(pack, list | tuple):
        records = list(pack)
    else:
        raise SenmlInvalid("a SenML pack is a list of records", field="(body)")
    if len(records) > max_records:
        raise InvalidInput(
            f"the pack has {len(records)} records; at most {max_records} are taken at once",
            code="SENML_TOO_MANY_RECORDS",
            field="(body)",
            limit=max_records,
        )
    return resolve_pack(records, now=now or utcnow())


class IngestGate:
    """At most ``inflight`` packs stored at once; a pack that waits longer than ``wait_s`` is
    refused (``IngestBusy``), so a burst is back-pressured instead of queued without bound."""

    def __init__(self, inflight: int, wait_s: float) -> None:
        self._slots = asyncio.Semaphore(inflight)
        self.wait_s = wait_s

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise IngestBusy(
                "readings are arriving faster than they are stored; send this pack again",
                retryAfter=max(1, round(self.wait_s)),
            ) from None
        try:
            yield
        finally:
            self._slots.release()
