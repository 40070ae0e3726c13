"""Storing readings and acting on them: idempotent inserts, rules in event time, flags, state.

``SensorStore.store`` checks each resolved SenML record against the node's
sensors (known, written by this device, in its unit, timed plausibly),
inserts the rest once per sensor and time (a repeat is a duplicate), then, in
the same transaction, replays each touched rule over the stored readings
around the new ones (``rules.episodes``) and reconciles the stretches in alarm
with the stored episodes: a new stretch raises one flag (``node.flags.raising``:
the chain of a person's flag), a stretch that ended records the clear on its
flag. The sensor's state (status, alarm rules, latest reading, series) follows.

Transactions on one node process are serialised by a lock (SQLite has one
writer anyway); on PostgreSQL, node processes sharing a database serialise
per sensor on the sensor's row (``FOR UPDATE``).
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from node.flags.raising import note_condition_cleared, raise_flag
from node.flags.tables import FlagTables
from node.sensors.gate import IngestGate
from node.sensors.metrics import SensorMetrics
from node.sensors.models import Device, IngestResult, Outcome, RecordResult
from node.sensors.rules import Episode, Point, episodes, lookback
from node.sensors.senml import ResolvedRecord
from node.sensors.tables import SensorTables
from node.settings import NodeSettings
from schema.enums import SensorRuleKind, SensorStatus, SeverityLevel
from schema.records import (
    FlagSource,
    RiskFlagCreate,
    SensorReading,
    SensorRule,
    SeriesPoint,
)
from schema.records.sensor import MAX_SERIES
from schema.runtime.db import Database
from schema.storage import utcnow
from schema.store.specs import RecordSpec

__all__ = ["MAINTENANCE_CATEGORY", "SensorStore", "StoredEpisode"]

MAINTENANCE_CATEGORY = "sensor_fault"
INSERT_CHUNK = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class StoredEpisode:
    """A ``sensor_episodes`` row."""

    id: int
    rule_id: str
    started_at: datetime
    cleared_at: datetime | None
    flag_id: str | None

    def overlaps(self, episode: Episode) -> bool:
        never = datetime.max.replace(tzinfo=UTC)
        return episode.started_at <= (self.cleared_at or never) and self.started_at <= (
            episode.cleared_at or never
        )


def _refused(index: int, code: str, message: str, sensor: str | None = None) -> RecordResult:
    return RecordResult(index, Outcome.REFUSED, sensor=sensor, code=code, message=message)


def window_start(t: datetime, window_s: float) -> datetime:
    """The start of the ``window_s`` window (from the epoch) that holds ``t``."""
    seconds = (t - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=math.floor(seconds / window_s) * window_s)


def merge_series(
    series: Sequence[SeriesPoint], points: Iterable[Point], window_s: float
) -> list[SeriesPoint]:
    """``series`` with new readings folded into their windows; the latest ``MAX_SERIES`` kept."""
    windows: dict[datetime, list[float]] = {
        p.start: [p.count, p.min, p.max, p.mean * p.count] for p in series
    }
    for t, v in points:
        start = window_start(t, window_s)
        acc = windows.get(start)
        if acc is None:
            windows[start] = [1, v, v, v]
        else:
            acc[0] += 1
            acc[1] = min(acc[1], v)
            acc[2] = max(acc[2], v)
            acc[3] += v
    kept = sorted(windows)[-MAX_SERIES:]
    return [
        SeriesPoint(
            start=start,
            count=int(windows[start][0]),
            min=windows[start][1],
            max=windows[start][2],
            mean=windows[start][3] / windows[start][0],
        )
        for start in kept
    ]


class SensorStore:
    """The node's sensor readings: store them, judge them, raise and clear flags."""

    def __init__(
        self,
        settings: NodeSettings,
        db: Database,
        tables: SensorTables,
        sensor_spec: RecordSpec,
        flag_spec: RecordSpec,
        flag_tables: FlagTables,
        wake: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.db = db
        self.tables = tables
        self.sensor_spec = sensor_spec
        self.flag_spec = flag_spec
        self.flag_tables = flag_tables
        self.wake = wake
        self.owner = settings.source_id
        self.gate = IngestGate(settings.sensor_max_inflight, settings.sensor_queue_wait_s)
        self.metrics = SensorMetrics()
        self.lock = asyncio.Lock()

    def global_id(self, local: str) -> str:
        return f"{self.sensor_spec.type_name}:{self.owner}:{local}"

    # --- ingest ----------------------------------------------------------

    async def _sensors_named(self, names: set[str]) -> dict[str, Any]:
        if not names:
            return {}
        table: Any = self.sensor_spec.table
        async with self.db.sessions() as session:
            rows = await session.execute(
                sa.select(table).where(table.code.in_(sorted(names)), table.retired_at.is_(None))
            )
            return {row.code: row for row in rows.scalars()}

    def _check(
        self, record: ResolvedRecord, sensor: Any, device: Device, now: datetime
    ) -> RecordResult | None:
        """The refusal of one record for a known sensor, or None."""
        gid = self.global_id(sensor.id)
        if device.org != self.settings.org_code or sensor.device != device.client_id:
            return _refused(
                record.index,
                "SENSOR_NOT_OWNED",
                f"[{record.index}]: device {device.client_id} may not write sensor {sensor.code}",
                gid,
            )
        if record.unit is not None and record.unit != sensor.unit:
            return _refused(
                record.index,
                "UNIT_MISMATCH",
                f"[{record.index}]: unit {record.unit!r} is not the sensor's {sensor.unit!r}",
                gid,
            )
        assert record.time is not None
        if record.time > now + timedelta(seconds=self.settings.sensor_max_future_s):
            return _refused(
                record.index,
                "TIME_OUT_OF_RANGE",
                f"[{record.index}]: {record.time.isoformat()} is in the future",
                gid,
            )
        if record.time < now - timedelta(seconds=self.settings.sensor_raw_retention_s):
            return _refused(
                record.index,
                "TIME_OUT_OF_RANGE",
                f"[{record.index}]: {record.time.isoformat()} is older than raw readings are kept",
                gid,
            )
        return None

    async def store(self, device: Device, resolved: Sequence[ResolvedRecord]) -> IngestResult:
        """Store the records of one pack from ``device`` (see ``node.sensors.ingest``)."""
        now = utcnow()
        sensors = await self._sensors_named(
            {r.name for r in resolved if r.error is None and r.name is not None}
        )
        outcomes: dict[int, RecordResult] = {}
        candidates: list[tuple[ResolvedRecord, Any]] = []
        seen: set[tuple[str, datetime]] = set()
        for record in resolved:
            if record.error is not None:
                outcomes[record.index] = _refused(
                    record.index, record.error, record.message or record.error
                )
                continue
            sensor = sensors.get(record.name or "")
            if sensor is None:
                outcomes[record.index] = _refused(
                    record.index,
                    "UNKNOWN_SENSOR",
                    f"[{record.index}]: no sensor {record.name!r} at {self.owner}",
                )
                continue
            refusal = self._check(record, sensor, device, now)
            if refusal is not None:
                outcomes[record.index] = refusal
                continue
            assert record.time is not None
            key = (sensor.id, record.time)
            if key in seen:
                outcomes[record.index] = RecordResult(
                    record.index, Outcome.DUPLICATE, self.global_id(sensor.id), record.time
                )
                continue
            seen.add(key)
            candidates.append((record, sensor))
        raised: list[str] = []
        cleared: list[str] = []
        if candidates:
            async with self.lock, self.db.transaction() as session:
                inserted = await self._insert(session, candidates, device, now)
                fresh: dict[str, list[Point]] = defaultdict(list)
                for record, sensor in candidates:
                    assert record.time is not None
                    assert record.value is not None
                    new = (sensor.id, record.time) in inserted
                    outcomes[record.index] = RecordResult(
                        record.index,
                        Outcome.ACCEPTED if new else Outcome.DUPLICATE,
                        self.global_id(sensor.id),
                        record.time,
                    )
                    if new:
                        fresh[sensor.id].append((record.time, record.value))
                for sensor_id in sorted(fresh):
                    up, down = await self._judge(session, sensor_id, sorted(fresh[sensor_id]))
                    raised.extend(up)
                    cleared.extend(down)
        if raised or cleared:
            self.wake()
        return IngestResult(
            tuple(outcomes[r.index] for r in resolved), tuple(raised), tuple(cleared)
        )

    async def _insert(
        self,
        session: AsyncSession,
        candidates: Sequence[tuple[ResolvedRecord, Any]],
        device: Device,
        now: datetime,
    ) -> set[tuple[str, datetime]]:
        """Insert each reading unless its sensor has one at that time; the (sensor, time) stored."""
        readings = self.tables.readings
        dialect = session.get_bind().dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values = [
            {
                "sensor_id": sensor.id,
                "t": record.time,
                "value": record.value,
                "device": device.client_id,
                "received_at": now,
            }
            for record, sensor in candidates
        ]
        # One compiled statement, executed for many rows (insertmanyvalues batches them);
        # RETURNING names the rows that were new.
        statement = (
            insert(readings)
            .on_conflict_do_nothing(index_elements=["sensor_id", "t"])
            .returning(readings.c.sensor_id, readings.c.t)
        )
        stored: set[tuple[str, datetime]] = set()
        for at in range(0, len(values), INSERT_CHUNK):
            result = await session.execute(statement, values[at : at + INSERT_CHUNK])
            stored.update((sensor_id, t) for sensor_id, t in result)
        return stored

    # --- rules -----------------------------------------------------------

    async def _locked_sensor(self, session: AsyncSession, sensor_id: str) -> Any:
        table: Any = self.sensor_spec.table
        result = await session.execute(
            sa.select(table)
            .where(table.id == sensor_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one()

    async def _points(self, session: AsyncSession, sensor_id: str, since: datetime) -> list[Point]:
        readings = self.tables.readings
        rows = await session.execute(
            sa.select(readings.c.t, readings.c.value)
            .where(readings.c.sensor_id == sensor_id, readings.c.t >= since)
            .order_by(readings.c.t)
        )
        return [(t, value) for t, value in rows]

    async def _replay_start(
        self, session: AsyncSession, sensor_id: str, horizon: datetime
    ) -> datetime:
        """The last reading at or before ``horizon`` (else ``horizon``): a replay from there
        sees a run that began before the horizon, so one reading at a time, at any interval,
        still holds a rule for its whole duration."""
        readings = self.tables.readings
        found: datetime | None = await session.scalar(
            sa.select(sa.func.max(readings.c.t)).where(
                readings.c.sensor_id == sensor_id, readings.c.t <= horizon
            )
        )
        return found if found is not None else horizon

    async def _episodes(
        self, session: AsyncSession, sensor_id: str, rule_id: str, since: datetime | None
    ) -> list[StoredEpisode]:
        """The rule's stored episodes still open or ended at or after ``since`` (None: open)."""
        table = self.tables.episodes
        query = sa.select(table).where(table.c.sensor_id == sensor_id, table.c.rule_id == rule_id)
        if since is None:
            query = query.where(table.c.cleared_at.is_(None))
        else:
            query = query.where(sa.or_(table.c.cleared_at.is_(None), table.c.cleared_at >= since))
        rows = await session.execute(query.order_by(table.c.started_at))
        return [StoredEpisode(r.id, r.rule_id, r.started_at, r.cleared_at, r.flag_id) for r in rows]

    async def _judge(
        self, session: AsyncSession, sensor_id: str, fresh: list[Point]
    ) -> tuple[list[str], list[str]]:
        """Evaluate every rule of one sensor around its new readings; update its state."""
        sensor = await self._locked_sensor(session, sensor_id)
        rules: list[SensorRule] = list(sensor.rules)
        raised: list[str] = []
        cleared: list[str] = []
        earliest = fresh[0][0]
        for rule in rules:
            if rule.kind is SensorRuleKind.SILENCE:
                cleared.extend(await self._silence_ends(session, sensor, rule, fresh))
                continue
            start = await self._replay_start(session, sensor_id, earliest - lookback(rule))
            stored = await self._episodes(session, sensor_id, rule.id, start)
            ongoing = next(
                (
                    e
                    for e in stored
                    if e.started_at <= start and (e.cleared_at is None or e.cleared_at > start)
                ),
                None,
            )
            window = timedelta(seconds=rule.window_s or 0.0)
            points = await self._points(session, sensor_id, start - window)
            for episode in episodes(
                rule,
                points,
                start=start,
                in_alarm_since=ongoing.started_at if ongoing is not None else None,
            ):
                match = (
                    ongoing
                    if episode.continued
                    else next((e for e in stored if e.overlaps(episode)), None)
                )
                if match is None:
                    flag_id = await self._open(session, sensor, rule, episode)
                    if flag_id is not None:
                        raised.append(flag_id)
                        if episode.cleared_at is not None:
                            cleared.append(flag_id)
                elif episode.cleared_at is not None and match.cleared_at is None:
                    await self._close(session, sensor, rule, match, episode.cleared_at)
                    if match.flag_id is not None:
                        cleared.append(match.flag_id)
        await self._update_state(session, sensor, fresh)
        return raised, cleared

    def _describe(self, sensor: Any, rule: SensorRule, episode: Episode) -> str:
        unit = sensor.unit
        if rule.kind is SensorRuleKind.SILENCE:
            return (
                f"传感器失联 Sensor silent: {sensor.name} ({sensor.code}) sent no reading for "
                f"{rule.silence_s:g} s since {episode.started_at.isoformat()}"
            )
        level = rule.level or 0.0
        if rule.kind is SensorRuleKind.RATE:
            sign = "≥" if level > 0 else "≤"
            condition = f"change over {rule.window_s or 0:g} s {sign} {level:g} {unit}"
        else:
            condition = f"{'≥' if rule.kind is SensorRuleKind.ABOVE else '≤'} {level:g} {unit}"
        last = f"; latest {episode.evidence[-1][1]:g} {unit}" if episode.evidence else ""
        observed = f" {sensor.observed}" if sensor.observed else ""
        return (
            f"传感器告警 Sensor alarm: {sensor.name}{observed} ({sensor.code}), rule {rule.id}: "
            f"{condition} for {rule.duration_s:g} s from {episode.started_at.isoformat()}{last}"
        )

    async def _open(
        self, session: AsyncSession, sensor: Any, rule: SensorRule, episode: Episode
    ) -> str | None:
        """Store a new episode and raise its flag (if the rule raises flags); the flag id."""
        flag_id: str | None = None
        if rule.flag:
            silence = rule.kind is SensorRuleKind.SILENCE
            content = RiskFlagCreate(
                category=MAINTENANCE_CATEGORY if silence else sensor.category,
                description=self._describe(sensor, rule, episode),
                location=sensor.location,
                address=sensor.address,
                estimated_severity=SeverityLevel.IV if silence else rule.severity,
            )
            row = await raise_flag(
                session,
                self.flag_tables,
                self.flag_spec,
                owner=self.owner,
                content=content,
                subject=f"sensor:{sensor.code}",
                source=FlagSource(
                    sensor=self.global_id(sensor.id),
                    rule=rule.id,
                    unit=sensor.unit,
                    level=rule.level,
                ),
                evidence=[SensorReading(t=t, v=v) for t, v in episode.evidence],
            )
            flag_id = f"{self.flag_spec.type_name}:{self.owner}:{row.id}"
        result = await session.execute(
            sa.insert(self.tables.episodes)
            .values(
                sensor_id=sensor.id,
                rule_id=rule.id,
                started_at=episode.started_at,
                triggered_at=episode.triggered_at,
                cleared_at=None,
                flag_id=flag_id,
                created_at=utcnow(),
            )
            .returning(self.tables.episodes.c.id)
        )
        episode_id = result.scalar_one()
        if episode.cleared_at is not None:
            stored = StoredEpisode(episode_id, rule.id, episode.started_at, None, flag_id)
            await self._close(session, sensor, rule, stored, episode.cleared_at)
        return flag_id

    async def _close(
        self,
        session: AsyncSession,
        sensor: Any,
        rule: SensorRule,
        episode: StoredEpisode,
        at: datetime,
    ) -> None:
        """End a stored episode at ``at`` (event time); its flag records the clear."""
        table = self.tables.episodes
        await session.execute(
            sa.update(table).where(table.c.id == episode.id).values(cleared_at=at)
        )
        if episode.flag_id is not None:
            await note_condition_cleared(
                session,
                self.flag_tables,
                self.flag_spec,
                flag_id=episode.flag_id,
                cleared_at=at,
                note=f"{sensor.code} rule {rule.id}: the condition ended at {at.isoformat()}",
            )

    async def _silence_ends(
        self, session: AsyncSession, sensor: Any, rule: SensorRule, fresh: list[Point]
    ) -> list[str]:
        """A reading after a silence began ends it; the flags whose condition that cleared."""
        cleared: list[str] = []
        for episode in await self._episodes(session, sensor.id, rule.id, None):
            silent_since = episode.started_at - timedelta(seconds=rule.silence_s or 0.0)
            after = [t for t, _ in fresh if t > silent_since]
            if after:
                await self._close(session, sensor, rule, episode, after[0])
                if episode.flag_id is not None:
                    cleared.append(episode.flag_id)
        return cleared

    async def _silent_due(self, now: datetime) -> list[str]:
        """Ids of sensors with a silence rule whose time has come (read without locks)."""
        table: Any = self.sensor_spec.table
        async with self.db.sessions() as session:
            rows = await session.execute(
                sa.select(table.id, table.rules, table.last_reading_at, table.created_at).where(
                    table.retired_at.is_(None)
                )
            )
            due: list[str] = []
            for sensor_id, rules, last_reading_at, created_at in rows:
                since: datetime = last_reading_at or created_at
                if any(
                    rule.kind is SensorRuleKind.SILENCE
                    and since + timedelta(seconds=rule.silence_s or 0.0) <= now
                    for rule in rules
                ):
                    due.append(sensor_id)
            return due

    async def check_silence(self, now: datetime) -> list[str]:
        """Open a silence episode (and its flag) for each sensor quiet past its rule; flag ids."""
        due = await self._silent_due(now)
        raised: list[str] = []
        if not due:
            return raised
        async with self.lock, self.db.transaction() as session:
            for sensor_id in due:
                sensor = await self._locked_sensor(session, sensor_id)
                since: datetime = sensor.last_reading_at or sensor.created_at
                for rule in sensor.rules:
                    if rule.kind is not SensorRuleKind.SILENCE:
                        continue
                    began = since + timedelta(seconds=rule.silence_s or 0.0)
                    if began > now or await self._episodes(session, sensor_id, rule.id, None):
                        continue  # not yet silent long enough, or already stale
                    flag_id = await self._open(
                        session, sensor, rule, Episode(began, began, None, ())
                    )
                    if flag_id is not None:
                        raised.append(flag_id)
                await self._update_state(session, sensor, [])
        if raised:
            self.wake()
        return raised

    async def _update_state(self, session: AsyncSession, sensor: Any, fresh: list[Point]) -> None:
        table = self.tables.episodes
        rows = await session.execute(
            sa.select(table.c.rule_id).where(
                table.c.sensor_id == sensor.id, table.c.cleared_at.is_(None)
            )
        )
        open_rules = set(rows.scalars())
        kinds = {rule.id: rule.kind for rule in sensor.rules}
        alarms = sorted(r for r in open_rules if kinds.get(r) is not SensorRuleKind.SILENCE)
        silent = any(kinds.get(r) is SensorRuleKind.SILENCE for r in open_rules)
        status = SensorStatus.ALARM if alarms else SensorStatus.STALE if silent else SensorStatus.OK
        values: dict[str, Any] = {"status": status, "alarm_rules": alarms}
        if fresh:
            latest_t, latest_v = fresh[-1]
            if sensor.last_reading_at is None or latest_t >= sensor.last_reading_at:
                values["last_reading_at"] = latest_t
                values["last_value"] = latest_v
            values["series"] = merge_series(sensor.series, fresh, self.settings.sensor_aggregate_s)
        if (
            status == sensor.status
            and alarms == list(sensor.alarm_rules)
            and set(values) == {"status", "alarm_rules"}
        ):
            return
        values["updated_at"] = utcnow()
        spec_table: Any = self.sensor_spec.table
        await session.execute(
            sa.update(spec_table)
            .where(spec_table.id == sensor.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
