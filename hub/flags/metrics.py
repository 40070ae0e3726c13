"""Prometheus histograms of flag lag: seconds from a flag being raised at its node to each hop."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram

__all__ = ["HOPS", "FlagMetrics"]

HOPS: tuple[str, ...] = (
    "raised_at_node",
    "received_at_hub",
    "routed",
    "delivered",
    "acknowledged",
    "verifying",
    "confirmed",
    "dismissed",
    "resolved",
    "escalated",
)
"""Every hop a flag's timeline may record, in workflow order."""

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 86400)


class FlagMetrics:
    """``linli_flag_hop_seconds{hop}``, registered on the hub's metrics registry."""

    def __init__(self) -> None:
        self.hop_seconds = Histogram(
            "linli_flag_hop_seconds",
            "Seconds from a risk flag being raised at its node to each hop of its timeline",
            ["hop"],
            registry=None,
            buckets=_BUCKETS,
        )

    def register(self, registry: CollectorRegistry) -> None:
        """Expose the histograms on ``registry`` (the hub's ``/metrics``)."""
        registry.register(self.hop_seconds)

    def observe(self, raised_at: datetime, hops: Mapping[str, datetime]) -> None:
        """Record the lag of each of ``hops`` (clock skew between node and hub counts as 0)."""
        for hop, at in hops.items():
            name = "escalated" if hop.startswith("escalated") else hop
            if name == "raised_at_node":
                continue
            self.hop_seconds.labels(name).observe(max(0.0, (at - raised_at).total_seconds()))
