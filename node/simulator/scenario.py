"""Scenarios of the sensor simulator: sensors and the curves their readings follow.

``rain_event``: a summer storm over a community. Rainfall (mm/h) rises from
nothing to about 80 mm/h and eases off within 40 minutes; the underground car
park's water level (m) fills with the run-off while its pump drains 0.015 m a
minute, passes its alarm level (0.30 m) about 21 minutes in, peaks near 0.68 m
and falls below its clear level (0.15 m) about 73 minutes in. Times are
simulated minutes; the simulator runs them faster (``--speed``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["SCENARIOS", "Scenario", "SimulatedSensor", "rain_event"]

STEP_MIN = 1 / 60  # the curves are integrated a simulated second at a time


@dataclass(frozen=True)
class SimulatedSensor:
    """One simulated sensor: its SenML name and unit, and the levels worth announcing."""

    code: str
    name: str
    kind: str  # a SensorKind value
    unit: str
    alarm: float | None = None
    clear: float | None = None
    noise: float = 0.0  # standard deviation of the measurement noise


@dataclass
class Scenario:
    """Sensors and a clock: ``values(minute)`` gives every sensor's true value at that time."""

    name: str
    minutes: float
    sensors: tuple[SimulatedSensor, ...]
    _state: dict[str, float]
    _minute: float = 0.0

    def values(self, minute: float) -> dict[str, float]:
        """The sensors' values at ``minute`` (advancing only: the curves are integrated)."""
        while self._minute + STEP_MIN <= minute:
            self._minute += STEP_MIN
            self._advance(self._minute)
        return dict(self._state)

    def measured(self, minute: float, rng: random.Random) -> dict[str, float]:
        """The values as the sensors report them: with noise, never below zero."""
        values = self.values(minute)
        return {
            s.code: round(max(0.0, values[s.code] + rng.gauss(0.0, s.noise)), 3)
            for s in self.sensors
        }

    def _advance(self, minute: float) -> None:
        raise NotImplementedError


RAIN_GAUGE = SimulatedSensor(
    code="rain-gauge-01",
    name="雨量计 Rain gauge (roof of block 3)",
    kind="rainfall",
    unit="mm/h",
    noise=0.0,
)
CAR_PARK_LEVEL = SimulatedSensor(
    code="carpark-b2-level",
    name="地下车库B2层水位 Car park B2 water level",
    kind="water_level",
    unit="m",
    alarm=0.30,
    clear=0.15,
    noise=0.004,
)
PEAK_RAIN_MM_H = 80.0
RAIN_FROM_MIN, RAIN_MINUTES = 2.0, 40.0
RUNOFF_M_PER_MM_H = 0.0007  # metres a minute the car park fills per mm/h of rain
PUMP_M_PER_MIN = 0.015
DRY_LEVEL_M = 0.02  # the sump's floor: the sensor never reads below it


class _RainEvent(Scenario):
    def _advance(self, minute: float) -> None:
        x = (minute - RAIN_FROM_MIN) / RAIN_MINUTES
        rain = PEAK_RAIN_MM_H * math.sin(math.pi * x) ** 2 if 0.0 <= x <= 1.0 else 0.0
        level = self._state[CAR_PARK_LEVEL.code]
        pump = PUMP_M_PER_MIN if level > DRY_LEVEL_M else 0.0
        level = max(DRY_LEVEL_M, level + (rain * RUNOFF_M_PER_MM_H - pump) * STEP_MIN)
        self._state = {RAIN_GAUGE.code: rain, CAR_PARK_LEVEL.code: level}


def rain_event() -> Scenario:
    """A 90-minute storm: the car park's water level passes its alarm and later clears."""
    return _RainEvent(
        name="rain",
        minutes=90.0,
        sensors=(RAIN_GAUGE, CAR_PARK_LEVEL),
        _state={RAIN_GAUGE.code: 0.0, CAR_PARK_LEVEL.code: DRY_LEVEL_M},
    )


SCENARIOS = {"rain": rain_event}
