"""Sensors in the node app: the readings endpoint, the store, and the silence and retention loop."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from node.flags.tables import FlagTables
from node.sensors.endpoints import readings_router
from node.sensors.retention import downsample
from node.sensors.series import series_field
from node.sensors.service import SensorStore
from node.sensors.tables import SensorTables
from node.settings import NodeSettings
from policies.caller import Caller
from schema.errors import InvalidInput
from schema.runtime.db import Database
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.storage import utcnow
from schema.store.resolvers import RecordHooks
from schema.store.specs import RecordSpec
from schema.store.tables import RowMixin

__all__ = ["NodeSensors", "SensorCodeHooks", "create_sensors"]

log = logging.getLogger("linli.node.sensors")

Authenticate = Callable[[str | None], Awaitable[Caller]]


class SensorCodeHooks:
    """``RecordHooks`` of sensors: a new sensor's code names no other sensor of the node."""

    async def created(self, session: AsyncSession, spec: RecordSpec, row: RowMixin) -> None:
        table: Any = spec.table
        sensor: Any = row
        clash = await session.execute(
            sa.select(table.id).where(
                table.code == sensor.code,
                table.id != row.id,
                table.retired_at.is_(None),
            )
        )
        if clash.first() is not None:
            raise InvalidInput(
                f"another sensor of this node has the code {sensor.code!r}",
                code="SENSOR_CODE_TAKEN",
                field="input.code",
            )

    def committed(self, spec: RecordSpec, row: RowMixin) -> None:
        """Nothing to wake."""


class NodeSensors:
    """The node's sensor part; ``store`` is what ``node.sensors.ingest`` takes."""

    def __init__(self, store: SensorStore) -> None:
        self.store = store
        self.metrics = store.metrics

    @property
    def record_hooks(self) -> dict[str, RecordHooks]:
        """For the GraphQL context: refuse a second sensor with the same code."""
        return {self.store.sensor_spec.type_name: SensorCodeHooks()}

    def query_fields(self) -> dict[str, Any]:
        """``sensorSeries``: a sensor's windowed aggregates over a range."""
        return series_field(self.store)

    def router(self, authenticate: Authenticate) -> APIRouter:
        """``POST /sensors/readings``."""
        return readings_router(authenticate, self.store)

    async def check_round(self) -> None:
        """One round: silent sensors, then retention."""
        now = utcnow()
        raised = await self.store.check_silence(now)
        if raised:
            log.info("sensors silent past their rule: raised %s", ", ".join(raised))
        done = await downsample(self.store, now)
        if done.folded or done.dropped:
            log.info(
                "sensor retention: %d raw readings folded, %d aggregates dropped",
                done.folded,
                done.dropped,
            )

    @contextlib.asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """The silence and retention loop, every ``sensor_check_s``."""

        async def once() -> None:
            await self.check_round()

        async with BackgroundTasks("sensor-checks") as tasks:
            tasks.start(
                repeat("sensor checks", once, interval_s=self.store.settings.sensor_check_s)
            )
            yield


def create_sensors(
    settings: NodeSettings,
    db: Database,
    tables: SensorTables,
    sensor_spec: RecordSpec,
    flag_spec: RecordSpec,
    flag_tables: FlagTables,
    wake: Callable[[], None],
) -> NodeSensors:
    """The sensor part of one node process."""
    return NodeSensors(SensorStore(settings, db, tables, sensor_spec, flag_spec, flag_tables, wake))
