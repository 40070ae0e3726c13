"""Errors of the risk-flag workflow, each with a stable ``code``.

LinliError
├── InvalidTransition     INVALID_TRANSITION  (from, to)
├── InvalidSequence       INVALID_SEQUENCE    (after, lastSeq)
└── EventsExpired         EVENTS_EXPIRED      (after, oldestSeq)

ValueError
└── RoutingConfigError    the routing file is wrong: the hub refuses to start
"""

from __future__ import annotations

from schema.errors import LinliError

__all__ = ["EventsExpired", "InvalidSequence", "InvalidTransition", "RoutingConfigError"]


class InvalidTransition(LinliError):
    """A move the workflow does not allow from the flag's current status."""

    code = "INVALID_TRANSITION"


class InvalidSequence(LinliError):
    """A subscription asked to resume after a sequence number the hub has not reached."""

    code = "INVALID_SEQUENCE"


class EventsExpired(LinliError):
    """A subscription asked to resume from events already pruned by the retention window."""

    code = "EVENTS_EXPIRED"


class RoutingConfigError(ValueError):
    """The routing rules are not valid; the message names the file, the rule and the problem."""
