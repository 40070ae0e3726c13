"""Errors of the node's flag outbox, each with a stable ``code``.

LinliError
└── OutboxEntryNotFailed    OUTBOX_ENTRY_NOT_FAILED  (id, status)
"""

from __future__ import annotations

from schema.errors import LinliError

__all__ = ["OutboxEntryNotFailed"]


class OutboxEntryNotFailed(LinliError):
    """Only an entry the hub refused for good is sent again by hand; the others are on their way."""

    code = "OUTBOX_ENTRY_NOT_FAILED"
