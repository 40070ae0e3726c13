"""Every hub table, imported here so the migrations see the whole hub schema."""

from hub.aid import tables as aid_tables
from hub.auth import tables as auth_tables
from hub.db import metadata
from hub.federation import tables as federation_tables
from hub.flags import tables as flag_tables
from hub.governance import audit as governance_audit
from hub.sitreps import tables as sitrep_tables

__all__ = [
    "aid_tables",
    "auth_tables",
    "federation_tables",
    "flag_tables",
    "governance_audit",
    "metadata",
    "sitrep_tables",
]
