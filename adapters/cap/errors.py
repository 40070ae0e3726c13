"""Errors of the CAP codec, each with a stable ``code``.

LinliError                      (schema.errors)
└── XmlError                    XML_ERROR                (adapters.xmlio, shared by XML codecs)
    ├── XmlTooLarge             XML_TOO_LARGE            over the size limit; not parsed at all
    ├── XmlForbidden            XML_FORBIDDEN            DTD, entity declaration, external reference
    ├── XmlMalformed            XML_MALFORMED            not well-formed XML
    └── CapError                CAP_ERROR
        ├── CapUnsupportedVersion   CAP_UNSUPPORTED_VERSION  CAP 1.0 or an unknown namespace
        ├── CapInvalid          CAP_INVALID              fails the CAP 1.2 XSD or CAP's own rules
        └── FeedInvalid         FEED_INVALID             not a usable ATOM or RSS feed
"""

from __future__ import annotations

from typing import Any

from adapters.xmlio import XmlError, XmlForbidden, XmlMalformed, XmlTooLarge

__all__ = [
    "CapError",
    "CapInvalid",
    "CapUnsupportedVersion",
    "FeedInvalid",
    "XmlError",
    "XmlForbidden",
    "XmlMalformed",
    "XmlTooLarge",
]


class CapError(XmlError):
    """Base of every error the CAP codec raises."""

    code = "CAP_ERROR"


class CapUnsupportedVersion(CapError):
    """An ``alert`` in a namespace other than CAP 1.1 or 1.2."""

    code = "CAP_UNSUPPORTED_VERSION"

    def __init__(self, namespace: str) -> None:
        shown = namespace or "(no namespace)"
        super().__init__(
            f"CAP namespace {shown} is not supported (only CAP 1.2 and 1.1)", namespace=namespace
        )


class CapInvalid(CapError):
    """A CAP message that fails the XSD or CAP's rules; ``path`` says where."""

    code = "CAP_INVALID"

    def __init__(self, reason: str, *, path: str, **details: Any) -> None:
        super().__init__(f"{path}: {reason}", path=path, reason=reason, **details)
        self.path = path
        self.reason = reason


class FeedInvalid(CapError):
    """An ATOM or RSS document that cannot be read as an alert feed."""

    code = "FEED_INVALID"

    def __init__(self, reason: str, *, path: str) -> None:
        super().__init__(f"{path}: {reason}", path=path, reason=reason)
        self.path = path
        self.reason = reason
