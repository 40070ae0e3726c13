"""Untrusted XML in, well-formed XML out: shared by every XML codec (CAP, EDXL-RM).

Reading measures the size first, then parses with a parser that refuses DTDs,
entity declarations and external references (defusedxml), so hostile input
costs nothing and expands nothing. Writing declares each namespace as the
default where it begins, which is what CAP and EDXL-RM consumers expect.

Errors, each with a stable ``code``::

    LinliError                  (schema.errors)
    └── XmlError                XML_ERROR        base of every XML codec's errors
        ├── XmlTooLarge         XML_TOO_LARGE    over the size limit; not parsed at all
        ├── XmlForbidden        XML_FORBIDDEN    DTD, entity declaration, external reference
        ├── XmlMalformed        XML_MALFORMED    not well-formed XML
        └── (each codec's own errors: CapError, EdxlRmError)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml  # type: ignore[import-untyped]
import defusedxml.ElementTree  # type: ignore[import-untyped]

from schema.errors import LinliError

__all__ = [
    "XML_DECLARATION",
    "XmlError",
    "XmlForbidden",
    "XmlMalformed",
    "XmlTooLarge",
    "parse_untrusted",
    "serialize",
    "split_tag",
    "unrepresentable",
]

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Kept as character references so that a parser gives back exactly these characters.
_TEXT_ESCAPES = {"\r": "&#13;"}
_ATTRIBUTE_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}

# Characters XML 1.0 cannot carry at all (§2.2); ElementTree would write them
# out unescaped and produce a document no parser accepts.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class XmlError(LinliError):
    """Base of every error an XML codec raises."""

    code = "XML_ERROR"


class XmlTooLarge(XmlError):
    """The document is larger than the limit; it was refused before parsing."""

    code = "XML_TOO_LARGE"

    def __init__(self, *, size: int, limit: int) -> None:
        super().__init__(f"document is {size} bytes, the limit is {limit}", size=size, limit=limit)


class XmlForbidden(XmlError):
    """The document uses a DTD, entities or external references, which are never accepted."""

    code = "XML_FORBIDDEN"


class XmlMalformed(XmlError):
    """The bytes are not well-formed XML."""

    code = "XML_MALFORMED"


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


def unrepresentable(value: str) -> str | None:
    """The first character of ``value`` that no XML document can carry, or None."""
    bad = _NOT_XML_CHAR.search(value)
    return None if bad is None else bad.group()


def serialize(root: Element, *, prefixes: Mapping[str, str] | None = None) -> bytes:
    """``root`` as a UTF-8 document, each namespace declared as the default where it begins.

    ElementTree can only make one namespace the default (others get ``ns0:``
    prefixes) and refuses unprefixed attributes when it does; CAP consumers
    expect ``<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">`` even inside
    an ATOM entry. Namespaces given in ``prefixes`` (namespace -> prefix) are
    instead declared once on the root and written with their prefix.
    """
    parts: list[str] = []
    _serialize(root, None, dict(prefixes or {}), parts, top=True)
    return XML_DECLARATION + "".join(parts).encode("utf-8") + b"\n"


def _serialize(
    element: Element,
    default_namespace: str | None,
    prefixes: dict[str, str],
    parts: list[str],
    *,
    top: bool = False,
) -> None:
    namespace, local = split_tag(element.tag)
    if any(key.startswith("{") for key in element.attrib):
        raise ValueError(f"<{local}> has a namespaced attribute, which serialize() cannot write")
    attributes = "".join(
        f' {key}="{escape(value, _ATTRIBUTE_ESCAPES)}"' for key, value in element.attrib.items()
    )
    if top:
        attributes = (
            "".join(
                f' xmlns:{prefix}="{escape(uri, _ATTRIBUTE_ESCAPES)}"'
                for uri, prefix in prefixes.items()
            )
            + attributes
        )
    prefix = prefixes.get(namespace)
    name = local if prefix is None else f"{prefix}:{local}"
    if prefix is None and namespace != default_namespace:
        attributes = f' xmlns="{escape(namespace, _ATTRIBUTE_ESCAPES)}"' + attributes
    # A prefixed element leaves the default namespace as it was for its children.
    inherited = namespace if prefix is None else default_namespace
    if element.text is None and len(element) == 0:
        parts.append(f"<{name}{attributes}/>")
    else:
        parts.append(f"<{name}{attributes}>")
        parts.append(escape(element.text or "", _TEXT_ESCAPES))
        for child in element:
            _serialize(child, inherited, prefixes, parts)
        parts.append(f"</{name}>")
    parts.append(escape(element.tail or "", _TEXT_ESCAPES))
