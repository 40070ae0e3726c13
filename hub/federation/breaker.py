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
    HALF_OPEN = "half_open"  # the cool-down is over: one probe call decides


@dataclass
class Breaker:
    """Opens after ``threshold`` consecutive failures; one probe after ``cooldown_s``.

    A refused call is not a failure, so traffic while the breaker is open never
    extends the cool-down. Once it is over, the first call goes out as the probe
    (others are refused while it is in flight): its success closes the breaker,
    its failure opens it again for a new cool-down.
    """

    threshold: int = 3
    cooldown_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _state: BreakerState = field(default=BreakerState.CLOSED, repr=False)
    _probing: bool = field(default=False, repr=False)

    @property
    def state(self) -> BreakerState:
        """Where the breaker is now (an open breaker whose cool-down is over is half open)."""
        if self._state is BreakerState.OPEN and self._cooled_down():
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """Whether a call may go out now (the first call after the cool-down is the probe)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._probing:
            return False
        self._state, self._probing = BreakerState.HALF_OPEN, True
        return True

    def succeeded(self) -> None:
        """A call that went out was answered: the source is healthy."""
        self.failures, self.opened_at = 0, None
        self._state, self._probing = BreakerState.CLOSED, False

    def failed(self) -> None:
        """A call that went out failed."""
        if self._state is BreakerState.HALF_OPEN:
            self._open()  # the probe failed (or a call from before it): a new cool-down
        elif self._state is BreakerState.CLOSED:
            self.failures += 1
            if self.failures >= self.threshold:
                self._open()
        # While open, a call that left before the breaker opened does not extend the cool-down.

    def abandoned(self) -> None:
        """A call that went out ended without a verdict (cancelled): free the probe slot."""
        self._probing = False

    def _open(self) -> None:
        self.opened_at = self.clock()
        self._state, self._probing = BreakerState.OPEN, False

    def _cooled_down(self) -> bool:
        return self.opened_at is not None and self.clock() - self.opened_at >= self.cooldown_s
