"""The district's active public alerts as CAP 1.2: ``/alerts.atom`` and ``/alerts/{id}.xml``."""

from hub.alerts.endpoints import alerts_router

__all__ = ["alerts_router"]
