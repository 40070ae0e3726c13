"""A circuit breaker per source: stop calling a source that keeps failing, try again later."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Breaker", "BreakerState"]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"  # calls flow
    OPEN = "open"  # calls are refused until the cool-down passes
    HALF_OPEN = "half_open"  # one trial call decides


@dataclass
class Breaker:
    """Opens after ``threshold`` consecutive failures; one trial after ``cooldown_s``."""

    threshold: int = 3
    cooldown_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _trial_running: bool = field(default=False, repr=False)

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a call may go out now (claims the trial slot when half open)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def succeeded(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._trial_running = False

    def failed(self) -> None:
        self.failures += 1
        self._trial_running = False
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = self.clock()
