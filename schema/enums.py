"""Enumerations of the common schema, after GB/T 35561, OASIS CAP 1.2 and OASIS EDXL-RM.

Values are lower-case snake words; GraphQL shows the upper-case member names.
"""

from __future__ import annotations

import enum

__all__ = [
    "AidRequestStatus",
    "CapCategory",
    "CapCertainty",
    "CapMsgType",
    "CapScope",
    "CapSeverity",
    "CapStatus",
    "CapUrgency",
    "IncidentCategory",
    "IncidentStatus",
    "OrgKind",
    "ResourceStatus",
    "RiskFlagStatus",
    "SeverityLevel",
    "ShelterStatus",
    "VolunteerAvailability",
    "WarningColour",
]


class OrgKind(enum.StrEnum):
    """What kind of organisation an OAuth client or a record owner is."""

    COMMUNITY = "community"
    DEPARTMENT = "department"
    ADAPTER = "adapter"
    HUB = "hub"
    PUBLIC = "public"


class IncidentCategory(enum.StrEnum):
    """GB/T 35561 top-level classes of emergencies (突发事件分类)."""

    NATURAL_DISASTER = "natural_disaster"  # 自然灾害
    ACCIDENT = "accident"  # 事故灾难
    PUBLIC_HEALTH = "public_health"  # 公共卫生事件
    SOCIAL_SECURITY = "social_security"  # 社会安全事件


class SeverityLevel(enum.StrEnum):
    """Severity levels I–IV (特别重大/重大/较大/一般)."""

    I = "I"  # noqa: E741 - the standard's own name
    II = "II"
    III = "III"
    IV = "IV"


class WarningColour(enum.StrEnum):
    """Early-warning colours, red the most severe."""

    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    BLUE = "blue"


class CapCategory(enum.StrEnum):
    """CAP 1.2 ``category`` values."""

    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class CapSeverity(enum.StrEnum):
    """CAP 1.2 ``severity``."""

    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class CapUrgency(enum.StrEnum):
    """CAP 1.2 ``urgency``."""

    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class CapCertainty(enum.StrEnum):
    """CAP 1.2 ``certainty`` (``Very Likely`` is accepted from CAP 1.0 feeds as LIKELY)."""

    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


class CapStatus(enum.StrEnum):
    """CAP 1.2 ``status``."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class CapMsgType(enum.StrEnum):
    """CAP 1.2 ``msgType``."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class CapScope(enum.StrEnum):
    """CAP 1.2 ``scope``."""

    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class IncidentStatus(enum.StrEnum):
    """Lifecycle of an incident."""

    REPORTED = "reported"
    ACTIVE = "active"
    CONTAINED = "contained"
    CLOSED = "closed"


class ResourceStatus(enum.StrEnum):
    """Where a relief resource stands."""

    AVAILABLE = "available"
    RESERVED = "reserved"
    DEPLOYED = "deployed"
    MAINTENANCE = "maintenance"


class ShelterStatus(enum.StrEnum):
    """Whether a shelter takes people."""

    OPEN = "open"
    FULL = "full"
    CLOSED = "closed"


class VolunteerAvailability(enum.StrEnum):
    """Whether a volunteer can be called on."""

    AVAILABLE = "available"
    ON_DUTY = "on_duty"
    UNAVAILABLE = "unavailable"


class RiskFlagStatus(enum.StrEnum):
    """The risk-flag workflow, from raised through verification to resolved."""

    RAISED = "raised"
    ROUTED = "routed"
    ACKNOWLEDGED = "acknowledged"
    VERIFYING = "verifying"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"


class AidRequestStatus(enum.StrEnum):
    """EDXL-RM message flow states of a mutual-aid request."""

    REQUESTED = "requested"  # RequestResource
    OFFERED = "offered"  # ResponseToRequestResource
    COMMITTED = "committed"  # CommitResource
    DISPATCHED = "dispatched"  # RequestResourceDeploymentStatus: en route
    RECEIVED = "received"
    RETURNED = "returned"  # ReleaseResource / ReturnResource
    DECLINED = "declined"
    CANCELLED = "cancelled"
    ACCEPTED = "accepted"  # RequisitionResource: the requester takes the offer
    IN_TRANSIT = "in_transit"  # deployment status: handed to transport
    RETURN_REQUESTED = "return_requested"  # RequestReturn


class SensorKind(enum.StrEnum):
    """What a sensor measures."""

    WATER_LEVEL = "water_level"  # e.g. an underground car park, in m
    RAINFALL = "rainfall"  # mm, or mm/h
    GAS = "gas"  # concentration: %LEL, ppm
    SMOKE = "smoke"
    TILT = "tilt"  # structural tilt, degrees
    RIVER_STAGE = "river_stage"  # m


class SensorStatus(enum.StrEnum):
    """A sensor's state: its rules quiet, one in alarm, or silent for too long."""

    OK = "ok"
    ALARM = "alarm"
    STALE = "stale"


class SensorRuleKind(enum.StrEnum):
    """What a sensor rule watches."""

    ABOVE = "above"  # at or above ``level`` for ``duration_s``; clears below ``clear``
    BELOW = "below"  # at or below ``level`` for ``duration_s``; clears above ``clear``
    RATE = "rate"  # the change over ``window_s`` reaches ``level`` (a fall when negative)
    SILENCE = "silence"  # no reading for ``silence_s``: the sensor is stale


__all__ += ["SensorKind", "SensorRuleKind", "SensorStatus"]
