"""Every hub table, imported here so the migrations see the whole hub schema."""

from hub.db import metadata

__all__ = ["metadata"]
