"""Sensors at the node: SenML readings in, rules in event time, flags raised by themselves.

``ingest`` (``node.sensors.ingest``) is the one entry point for readings, for
every transport: HTTP (``endpoints``: ``POST /sensors/readings``) and MQTT.
``senml`` resolves RFC 8428 packs; ``service`` stores readings once per
sensor and time, replays the rules around them (``rules``) and raises or
clears flags through the node's flag outbox (``node.flags.raising``);
``retention`` folds old readings into aggregates.
"""

from node.sensors.component import NodeSensors, create_sensors
from node.sensors.errors import IngestBusy, SenmlInvalid
from node.sensors.ingest import ingest
from node.sensors.models import Device, IngestResult, Outcome, RecordResult
from node.sensors.service import SensorStore
from node.sensors.tables import SensorTables, define_sensor_tables

__all__ = [
    "Device",
    "IngestBusy",
    "IngestResult",
    "NodeSensors",
    "Outcome",
    "RecordResult",
    "SenmlInvalid",
    "SensorStore",
    "SensorTables",
    "create_sensors",
    "define_sensor_tables",
    "ingest",
]
