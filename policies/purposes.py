"""The purpose a caller states for a read (``X-Linli-Purpose``), from a configured code list.

Personal data is disclosed only for a stated purpose (see the baseline policy),
so the purpose is a code from the service's ``purposes`` setting (by default
``schema.codes.DEFAULT_PURPOSES``), never free text: free text would unlock
with any value (even ".") and would carry whatever a caller typed, names
included, into every owner's audit log.

An unknown code is refused (``PURPOSE_UNKNOWN``, HTTP 400, naming the allowed
codes) rather than treated as no purpose. A caller who mistypes ``rescue``
learns it at once instead of reading masked data it takes for the whole
answer, and the audit log holds only codes. The hub checks the purpose against
its own list before it fans out, and forwards only codes it accepts; a source
whose list lacks that code refuses it in the same way, and the hub reports that
source as ``denied`` while the other sources answer (the refusal counts as an
answer, so it never opens the source's circuit). Nodes that disagree therefore
cost the caller that node's data for that purpose, never the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from schema.errors import InvalidInput

__all__ = [
    "MAX_PURPOSE",
    "PURPOSE_HEADER",
    "PURPOSE_UNKNOWN",
    "PurposeUnknown",
    "purpose_from_header",
]

PURPOSE_HEADER: Final = "X-Linli-Purpose"
MAX_PURPOSE: Final = 200
PURPOSE_UNKNOWN: Final = "PURPOSE_UNKNOWN"


class PurposeUnknown(InvalidInput):
    """A stated purpose that is not in the service's code list."""

    def __init__(self, stated: str, allowed: Mapping[str, str]) -> None:
        codes = sorted(allowed)
        super().__init__(
            f"{PURPOSE_HEADER} {stated[:40]!r} is not a known purpose; use one of: "
            + (", ".join(codes) or "(none configured)"),
            code=PURPOSE_UNKNOWN,
            field=PURPOSE_HEADER,
            allowed=codes,
        )


def purpose_from_header(value: str | None, allowed: Mapping[str, str]) -> str:
    """The purpose code stated in ``X-Linli-Purpose`` ("" when none); refused if not ``allowed``."""
    purpose = (value or "").strip()
    if len(purpose) > MAX_PURPOSE:
        raise InvalidInput(
            f"{PURPOSE_HEADER} is over {MAX_PURPOSE} characters",
            code="STRING_TOO_LONG",
            field=PURPOSE_HEADER,
        )
    if purpose and purpose not in allowed:
        raise PurposeUnknown(purpose, allowed)
    return purpose
