"""Sensor rules evaluated in event time: which stretches of readings put a rule in alarm.

Pure functions over readings sorted by their own time (never by arrival), so a
late reading is judged where it belongs. ``episodes`` replays one rule from a
starting point, knowing whether the rule was already in alarm there, and
returns every stretch during which it held:

- ``above`` (``below`` mirrors it): a reading at or above ``level`` starts a
  pending run; the run must stay at or above ``level`` for ``duration_s``
  (reading to reading) before the alarm begins; any reading below ``level``
  ends a pending run. Once in alarm, only a reading below ``clear`` (the
  hysteresis level, below ``level``) ends it, so values flapping between the
  two levels keep one alarm.
- ``rate``: the same, on the change of each reading against the earliest
  reading within ``window_s`` before it (a rise to ``level``; a fall when
  ``level`` is negative).

``silence`` is not judged from readings but from their absence (``retention``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schema.enums import SensorRuleKind
from schema.records import SensorRule

__all__ = ["MAX_EVIDENCE", "Episode", "Point", "episodes", "lookback"]

Point = tuple[datetime, float]
MAX_EVIDENCE = 50
"""The most readings a flag carries as evidence (the latest up to the trigger)."""


@dataclass(frozen=True, slots=True)
class Episode:
    """One stretch in alarm: began, held long enough, ended (None: still in alarm)."""

    started_at: datetime
    triggered_at: datetime
    cleared_at: datetime | None
    evidence: tuple[Point, ...]
    continued: bool = False
    """It was already in alarm at the replay's start (an episode stored before)."""


def lookback(rule: SensorRule) -> timedelta:
    """How far before a new reading a replay must start to judge it."""
    return timedelta(seconds=rule.duration_s + (rule.window_s or 0.0))


def _rising(rule: SensorRule) -> bool:
    assert rule.level is not None
    return rule.kind is SensorRuleKind.ABOVE or (
        rule.kind is SensorRuleKind.RATE and rule.level > 0
    )


def _changes(points: Sequence[Point], window_s: float) -> list[float]:
    """Each reading's change against the earliest reading within ``window_s`` before it."""
    times = [t for t, _ in points]
    window = timedelta(seconds=window_s)
    return [v - points[bisect_left(times, t - window)][1] for t, v in points]


def episodes(
    rule: SensorRule,
    points: Sequence[Point],
    *,
    start: datetime,
    in_alarm_since: datetime | None,
) -> list[Episode]:
    """Every stretch in alarm of ``rule`` over ``points`` (sorted by time) from ``start`` on.

    ``in_alarm_since``: when the rule was already in alarm at ``start``, the
    stored episode's beginning. ``points`` before ``start`` only serve a rate
    rule's window.
    """
    if rule.kind is SensorRuleKind.SILENCE or rule.level is None:
        return []
    level, clear = rule.level, rule.clear_level
    rising = _rising(rule)
    tested = (
        _changes(points, rule.window_s or 0.0)
        if rule.kind is SensorRuleKind.RATE
        else [v for _, v in points]
    )
    hold = timedelta(seconds=rule.duration_s)
    found: list[Episode] = []
    current: Episode | None = None
    if in_alarm_since is not None:
        current = Episode(in_alarm_since, in_alarm_since, None, (), continued=True)
    pending: int | None = None  # index where the pending run began
    for index, ((t, _), x) in enumerate(zip(points, tested, strict=True)):
        if t < start:
            continue
        if current is not None:
            if (x < clear) if rising else (x > clear):
                found.append(_ended(current, t))
                current = None
            continue
        beyond = x >= level if rising else x <= level
        if not beyond:
            pending = None
            continue
        if pending is None:
            pending = index
        began = points[pending][0]
        if t - began >= hold:
            current = Episode(began, t, None, _evidence(rule, points, pending, index))
            pending = None
    if current is not None:
        found.append(current)
    return found


def _ended(episode: Episode, at: datetime) -> Episode:
    return Episode(
        episode.started_at, episode.triggered_at, at, episode.evidence, episode.continued
    )


def _evidence(
    rule: SensorRule, points: Sequence[Point], first: int, last: int
) -> tuple[Point, ...]:
    if rule.kind is SensorRuleKind.RATE:
        # The window the first change was measured over belongs to the evidence.
        times = [t for t, _ in points]
        first = bisect_left(times, points[first][0] - timedelta(seconds=rule.window_s or 0.0))
    run = points[first : last + 1]
    return tuple(run[-MAX_EVIDENCE:])
