"""The node's sensor metrics, on its registry (``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from node.sensors.models import IngestResult, Outcome

__all__ = ["SensorMetrics"]


class SensorMetrics:
    """Records taken in, by outcome; packs refused as busy; flags raised and cleared."""

    def __init__(self) -> None:
        self.records = Counter(
            "linli_node_sensor_records_total",
            "SenML records taken in, by outcome (accepted, duplicate, refused)",
            ["outcome"],
            registry=None,
        )
        self.busy = Counter(
            "linli_node_sensor_packs_busy_total",
            "SenML packs refused with INGEST_BUSY (HTTP 429): sent again by the device",
            registry=None,
        )
        self.flags = Counter(
            "linli_node_sensor_flags_total",
            "Flags sensor rules raised, and conditions that cleared",
            ["change"],
            registry=None,
        )

    def register(self, registry: CollectorRegistry) -> None:
        """Expose the metrics on ``registry``."""
        for metric in (self.records, self.busy, self.flags):
            registry.register(metric)

    def taken(self, result: IngestResult) -> None:
        for outcome in Outcome:
            if result.counts[outcome]:
                self.records.labels(outcome.value).inc(result.counts[outcome])
        if result.flags_raised:
            self.flags.labels("raised").inc(len(result.flags_raised))
        if result.flags_cleared:
            self.flags.labels("cleared").inc(len(result.flags_cleared))
