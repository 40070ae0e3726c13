"""Errors of the EDXL-RM codec, each with a stable ``code``.

LinliError                        (schema.errors)
└── XmlError                      XML_ERROR  (adapters.xmlio: XML_TOO_LARGE, XML_FORBIDDEN,
    │                                        XML_MALFORMED)
    └── EdxlRmError               EDXL_RM_ERROR
        ├── EdxlRmWrongNamespace      EDXL_RM_WRONG_NAMESPACE      root not in the RM message
        │                                                          namespace
        ├── EdxlRmUnsupportedMessage  EDXL_RM_UNSUPPORTED_MESSAGE  not a message of the aid flow
        ├── EdxlRmInvalid             EDXL_RM_INVALID              breaks EDXL-RM 1.0's structure
        │                                                          or value types
        └── EdxlRmNotAStep            EDXL_RM_NOT_A_STEP           valid EDXL-RM, not a Linli step
"""

from __future__ import annotations

from typing import Any

from adapters.xmlio import XmlError

__all__ = [
    "EdxlRmError",
    "EdxlRmInvalid",
    "EdxlRmNotAStep",
    "EdxlRmUnsupportedMessage",
    "EdxlRmWrongNamespace",
]


class EdxlRmError(XmlError):
    """Base of every error the EDXL-RM codec raises (besides the XML-level ones)."""

    code = "EDXL_RM_ERROR"


class EdxlRmWrongNamespace(EdxlRmError):
    """The root element is not in the EDXL-RM 1.0 message namespace."""

    code = "EDXL_RM_WRONG_NAMESPACE"

    def __init__(self, namespace: str, *, expected: str) -> None:
        shown = namespace or "(no namespace)"
        super().__init__(
            f"the root element is in {shown}, not the EDXL-RM 1.0 message namespace {expected}",
            namespace=namespace,
            expected=expected,
        )


class EdxlRmUnsupportedMessage(EdxlRmError):
    """An EDXL-RM message the aid flow does not use, or a root that is no RM message."""

    code = "EDXL_RM_UNSUPPORTED_MESSAGE"

    def __init__(self, element: str, *, supported: list[str]) -> None:
        super().__init__(
            f"<{element}> is not an EDXL-RM message of the aid flow "
            f"(supported: {', '.join(supported)})",
            element=element,
            supported=supported,
        )


class EdxlRmInvalid(EdxlRmError):
    """A message that breaks EDXL-RM 1.0's element structure or value types; ``path`` says where."""

    code = "EDXL_RM_INVALID"

    def __init__(self, reason: str, *, path: str, **details: Any) -> None:
        super().__init__(f"{path}: {reason}", path=path, reason=reason, **details)
        self.path = path
        self.reason = reason


class EdxlRmNotAStep(EdxlRmError):
    """A valid EDXL-RM message that lacks, or contradicts, what a Linli aid step needs."""

    code = "EDXL_RM_NOT_A_STEP"

    def __init__(self, reason: str, *, path: str, **details: Any) -> None:
        super().__init__(f"{path}: {reason}", path=path, reason=reason, **details)
        self.path = path
        self.reason = reason
