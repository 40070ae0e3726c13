"""The OAuth 2.0 scopes: what a client may do at all (each owner's policy decides the rest)."""

from __future__ import annotations

import enum

__all__ = ["Scope"]


class Scope(enum.StrEnum):
    """Every scope the hub issues and every source checks, in the documented order."""

    INCIDENTS_READ = "incidents:read"
    RESOURCES_READ = "resources:read"
    SHELTERS_READ = "shelters:read"
    VOLUNTEERS_READ = "volunteers:read"
    PII_READ = "pii:read"
    RISK_FLAG = "risk:flag"
    RISK_VERIFY = "risk:verify"
    AID_REQUEST = "aid:request"
    AID_RESPOND = "aid:respond"
    ALERTS_READ = "alerts:read"
    ALERTS_PUBLISH = "alerts:publish"
    EMERGENCY_DECLARE = "emergency:declare"
    AUDIT_READ = "audit:read"
    ADMIN = "admin"
    RECORDS_WRITE = "records:write"
    SITREP_READ = "sitrep:read"
    SITREP_WRITE = "sitrep:write"
    SITREP_SUBMIT = "sitrep:submit"
    RISK_READ = "risk:read"
    SENSORS_WRITE = "sensors:write"
