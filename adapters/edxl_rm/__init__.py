"""OASIS EDXL-RM 1.0 (Resource Messaging) codec: Linli aid steps as RM messages, in and out.

A pure library: it reads untrusted bytes safely (size limit, no DTDs or
entities), checks the message against EDXL-RM 1.0's element structure (the
OASIS XSD is not available here; see ``_structure``), and maps each message to
and from one aid step.
"""

from adapters.edxl_rm._step import AidDisclosure, AidStep, AidStepKind
from adapters.edxl_rm._structure import CT_NAMESPACE, FLOW_MESSAGES, MSG_NAMESPACE, RmMessage
from adapters.edxl_rm.codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    EDXL_RM_CONTENT_TYPE,
    KIND_LIST_URN,
    MESSAGES_FOR_KIND,
    STEP_LIST_URN,
    UNIT_LIST_URN,
    parse_step,
    step_from_element,
    step_to_element,
    validate_message,
    write_step,
)
from adapters.edxl_rm.errors import (
    EdxlRmError,
    EdxlRmInvalid,
    EdxlRmNotAStep,
    EdxlRmUnsupportedMessage,
    EdxlRmWrongNamespace,
)
from adapters.xmlio import XmlError, XmlForbidden, XmlMalformed, XmlTooLarge

__all__ = [
    "CT_NAMESPACE",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "EDXL_RM_CONTENT_TYPE",
    "FLOW_MESSAGES",
    "KIND_LIST_URN",
    "MESSAGES_FOR_KIND",
    "MSG_NAMESPACE",
    "STEP_LIST_URN",
    "UNIT_LIST_URN",
    "AidDisclosure",
    "AidStep",
    "AidStepKind",
    "EdxlRmError",
    "EdxlRmInvalid",
    "EdxlRmNotAStep",
    "EdxlRmUnsupportedMessage",
    "EdxlRmWrongNamespace",
    "RmMessage",
    "XmlError",
    "XmlForbidden",
    "XmlMalformed",
    "XmlTooLarge",
    "parse_step",
    "step_from_element",
    "step_to_element",
    "validate_message",
    "write_step",
]
