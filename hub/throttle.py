"""Rate limits of one hub process: moving windows over in-memory counters (``limits``).

Each replica counts for itself; a caller spread over ``n`` replicas gets ``n`` times the
rate, which is still a bound (the limits are against one caller swamping a replica).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

__all__ = ["RATE_LIMITED", "Throttle", "per_minute", "per_second"]

RATE_LIMITED = "RATE_LIMITED"
"""The stable code of a request refused by a rate limit (HTTP 429)."""


def per_second(amount: int) -> RateLimitItem:
    """``amount`` events per second."""
    return RateLimitItemPerSecond(amount)


def per_minute(amount: int) -> RateLimitItem:
    """``amount`` events per minute."""
    return RateLimitItemPerMinute(amount)


@dataclass(frozen=True)
class Throttle:
    """One limit, counted per key (a client id, an address) in a moving window."""

    limit: RateLimitItem
    name: str
    _limiter: MovingWindowRateLimiter

    @classmethod
    def of(cls, limit: RateLimitItem, name: str) -> Throttle:
        """A throttle over its own in-memory counters; ``name`` separates its keys."""
        return cls(limit, name, MovingWindowRateLimiter(MemoryStorage()))

    def hit(self, key: str) -> bool:
        """Count one event for ``key``; ``False`` if it is over the limit (then not counted)."""
        return self._limiter.hit(self.limit, self.name, key)

    def allows(self, key: str) -> bool:
        """Whether one more event for ``key`` is within the limit (nothing is counted)."""
        return self._limiter.test(self.limit, self.name, key)

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` may act again (at least 1): the ``Retry-After`` value."""
        stats = self._limiter.get_window_stats(self.limit, self.name, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
