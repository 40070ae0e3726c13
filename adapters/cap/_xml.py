"""Reading untrusted XML: the size limit first, then a parser that refuses DTDs and entities."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml  # type: ignore[import-untyped]
import defusedxml.ElementTree  # type: ignore[import-untyped]

from adapters.cap.errors import CapInvalid, XmlForbidden, XmlMalformed, XmlTooLarge

__all__ = [
    "DEFAULT_MAX_ALERT_BYTES",
    "DEFAULT_MAX_FEED_BYTES",
    "check_xml_text",
    "parse_untrusted",
    "split_tag",
]

DEFAULT_MAX_ALERT_BYTES = 1024 * 1024
"""Largest CAP message accepted by default (1 MiB)."""

DEFAULT_MAX_FEED_BYTES = 8 * 1024 * 1024
"""Largest feed accepted by default: national index feeds run to a few MiB."""

# Characters XML 1.0 cannot carry at all (§2.2); ElementTree would write them
# out unescaped and produce a document no parser accepts.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def parse_untrusted(data: bytes, *, max_bytes: int) -> Element:
    """Parse untrusted bytes, refusing oversized input, DTDs, entities and external references."""
    # Measured before the parser sees a byte, so a huge document costs nothing.
    if len(data) > max_bytes:
        raise XmlTooLarge(size=len(data), limit=max_bytes)
    try:
        root: Element = defusedxml.ElementTree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as exc:
        raise XmlForbidden(
            f"DTDs, entities and external references are not accepted ({type(exc).__name__})",
            refused=type(exc).__name__,
        ) from exc
    except ParseError as exc:
        raise XmlMalformed(f"not well-formed XML: {exc}") from exc
    except LookupError as exc:  # an XML declaration naming an encoding Python does not know
        raise XmlMalformed(f"not well-formed XML: {exc}") from exc
    return root


def split_tag(tag: str) -> tuple[str, str]:
    """``{namespace}local`` as ``(namespace, local)``; no namespace gives ``""``."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def check_xml_text(value: str, *, path: str) -> str:
    """``value`` unchanged, or CAP_INVALID if XML cannot represent one of its characters."""
    bad = _NOT_XML_CHAR.search(value)
    if bad is not None:
        raise CapInvalid(
            f"character U+{ord(bad.group()):04X} cannot appear in an XML document", path=path
        )
    return value
