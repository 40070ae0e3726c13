"""How long to wait before retrying a delivery."""

from __future__ import annotations

import random

__all__ = ["backoff_s"]


def backoff_s(attempts: int, *, base_s: float, max_s: float) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2**(attempts-1)``."""
    ceiling: float = min(max_s, base_s * 2.0 ** min(max(attempts - 1, 0), 30))
    return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret
