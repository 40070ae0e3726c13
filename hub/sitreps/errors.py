"""Errors of situation reports, each with a stable ``code``.

LinliError
├── ReportOutOfOrder        REPORT_OUT_OF_ORDER        (kind, incidentId, needs)
├── ReportAlreadySubmitted  REPORT_ALREADY_SUBMITTED   (reportId, version)
└── ReportVersionConflict   REPORT_VERSION_CONFLICT    (reportId, version)

A field over its limit is ``InvalidInput`` with ``STRING_TOO_LONG`` or ``OUT_OF_RANGE``
and the field's name, as everywhere else.
"""

from __future__ import annotations

from schema.errors import LinliError

__all__ = [
    "ReportAlreadySubmitted",
    "ReportOutOfOrder",
    "ReportVersionConflict",
]


class ReportOutOfOrder(LinliError):
    """A follow-up or final report before the initial one, or anything after the final."""

    code = "REPORT_OUT_OF_ORDER"


class ReportAlreadySubmitted(LinliError):
    """This revision of the report was submitted already: edit it to submit a new version."""

    code = "REPORT_ALREADY_SUBMITTED"


class ReportVersionConflict(LinliError):
    """A level below sent a version number it sent before, with different content."""

    code = "REPORT_VERSION_CONFLICT"
