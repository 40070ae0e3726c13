"""The common schema: every record type, enum and code list, defined once."""

SCHEMA_VERSION = "1.0"
"""Version of the node protocol's schema; a hub refuses sources of another major version."""
