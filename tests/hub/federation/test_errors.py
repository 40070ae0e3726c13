"""Each way a source call fails has its status and the stable code of today's wire."""

from __future__ import annotations

import pytest

from hub.federation.errors import (
    CircuitOpen,
    SourceBusy,
    SourceDenied,
    SourceError,
    SourceNotFound,
    SourceTimeout,
    SourceUnavailable,
)
from hub.federation.reports import SourceStatus


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (SourceError, SourceStatus.ERROR, "SOURCE_ERROR"),
        (SourceTimeout, SourceStatus.TIMEOUT, "SOURCE_TIMEOUT"),
        (SourceUnavailable, SourceStatus.UNAVAILABLE, "SOURCE_UNAVAILABLE"),
        (CircuitOpen, SourceStatus.UNAVAILABLE, "SOURCE_UNAVAILABLE"),
        (SourceBusy, SourceStatus.BUSY, "SOURCE_BUSY"),
        (SourceDenied, SourceStatus.DENIED, "SOURCE_DENIED"),
        (SourceNotFound, SourceStatus.NOT_FOUND, "NOT_FOUND"),
    ],
)
def test_each_source_error_has_its_status_and_stable_code(
    error: type[SourceError], status: SourceStatus, code: str
) -> None:
    raised = error("why")
    assert isinstance(raised, SourceError)
    assert (raised.status, raised.code, raised.message) == (status, code, "why")
    if status is not SourceStatus.NOT_FOUND:
        assert status.error_code == code  # the GraphQL error names the source with this code


def test_the_wire_values_of_source_status() -> None:
    assert [s.value for s in SourceStatus] == [
        "ok", "timeout", "error", "unavailable", "busy", "denied", "stale", "not_found",
    ]  # fmt: skip
    assert SourceStatus.OK.error_code is None
    assert SourceStatus.NOT_FOUND.error_code is None
    assert SourceStatus.STALE.error_code == "SOURCE_STALE"
