"""CAP (OASIS Common Alerting Protocol) 1.2 codec: alerts and alert feeds, in and out.

A pure library: it reads untrusted bytes safely (size limit, no DTDs or
entities), validates against the OASIS CAP 1.2 XSD, and maps CAP to and from
the common schema's Alert records.
"""

from adapters.cap._xml import DEFAULT_MAX_ALERT_BYTES, DEFAULT_MAX_FEED_BYTES
from adapters.cap.codec import (
    ATOM_CONTENT_TYPE,
    CAP_1_0_NAMESPACE,
    CAP_1_1_NAMESPACE,
    CAP_1_2_NAMESPACE,
    CAP_CONTENT_TYPE,
    CAP_MIME_TYPE,
    CAP_XSD_PATH,
    CapVersion,
    cap12_schema,
    parse_alert,
    validate_alert,
    write_alert,
)
from adapters.cap.errors import (
    CapError,
    CapInvalid,
    CapUnsupportedVersion,
    FeedInvalid,
    XmlError,
    XmlForbidden,
    XmlMalformed,
    XmlTooLarge,
)
from adapters.cap.feed import ATOM_NAMESPACE, FeedEntry, alert_link, parse_feed, write_atom_feed

__all__ = [
    "ATOM_CONTENT_TYPE",
    "ATOM_NAMESPACE",
    "CAP_1_0_NAMESPACE",
    "CAP_1_1_NAMESPACE",
    "CAP_1_2_NAMESPACE",
    "CAP_CONTENT_TYPE",
    "CAP_MIME_TYPE",
    "CAP_XSD_PATH",
    "DEFAULT_MAX_ALERT_BYTES",
    "DEFAULT_MAX_FEED_BYTES",
    "CapError",
    "CapInvalid",
    "CapUnsupportedVersion",
    "CapVersion",
    "FeedEntry",
    "FeedInvalid",
    "XmlError",
    "XmlForbidden",
    "XmlMalformed",
    "XmlTooLarge",
    "alert_link",
    "cap12_schema",
    "parse_alert",
    "parse_feed",
    "validate_alert",
    "write_alert",
    "write_atom_feed",
]
