"""CAP's use of the shared XML reader and writer: its size limits and its text check."""

from __future__ import annotations

from adapters.cap.errors import CapInvalid
from adapters.xmlio import XML_DECLARATION, parse_untrusted, serialize, split_tag, unrepresentable

__all__ = [
    "DEFAULT_MAX_ALERT_BYTES",
    "DEFAULT_MAX_FEED_BYTES",
    "XML_DECLARATION",
    "check_xml_text",
    "parse_untrusted",
    "serialize",
    "split_tag",
]

DEFAULT_MAX_ALERT_BYTES = 1024 * 1024
"""Largest CAP message accepted by default (1 MiB)."""

DEFAULT_MAX_FEED_BYTES = 8 * 1024 * 1024
"""Largest feed accepted by default: national index feeds run to a few MiB."""


def check_xml_text(value: str, *, path: str) -> str:
    """``value`` unchanged, or CAP_INVALID if XML cannot represent one of its characters."""
    bad = unrepresentable(value)
    if bad is not None:
        raise CapInvalid(f"character U+{ord(bad):04X} cannot appear in an XML document", path=path)
    return value
