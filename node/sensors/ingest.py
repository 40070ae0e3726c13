"""The one entry point for sensor readings, whatever carries them (HTTP here, MQTT, ...).

Contract of ``ingest(sensors, device, pack)``:

- ``sensors``: the node's ``SensorStore`` (``app.state.sensors.store`` of a node
  app built by ``node.app.create_app``); it holds the database, the settings,
  the flag outbox and the gate that back-pressures bursts.
- ``device``: who sends, as the transport authenticated it: the organisation
  and the OAuth client id (``Device``). A device writes only the sensors whose
  ``device`` field names its client id, at its own organisation's node.
- ``pack``: a SenML (RFC 8428) JSON pack, as the raw body (``bytes``) or
  already decoded (a list of record objects). Base fields are resolved.
- Returns an ``IngestResult`` with one ``RecordResult`` per record of the pack,
  in order: ``accepted`` (stored now), ``duplicate`` (that sensor already has
  a reading at that time: stored once, this one changed nothing) or
  ``refused`` with a ``code``: ``SENML_INVALID``, ``SENML_NOT_NUMERIC``,
  ``UNKNOWN_SENSOR``, ``SENSOR_NOT_OWNED``, ``UNIT_MISMATCH``,
  ``TIME_OUT_OF_RANGE``. Every record gets exactly one outcome: none is
  dropped silently. The accepted ones are committed, with the rule
  evaluation they caused (flags raised or cleared), before it returns.
- Raises, storing nothing of the pack: ``SenmlInvalid`` (``SENML_INVALID``:
  not a JSON array of SenML records, a bad base field, ``bver`` > 10, a
  must-understand field), ``InvalidInput`` ``SENML_TOO_MANY_RECORDS`` (more
  than ``sensor_max_batch``), ``IngestBusy`` (``INGEST_BUSY``, with
  ``retryAfter`` seconds: the node has taken ``sensor_max_inflight`` packs
  already and this one waited ``sensor_queue_wait_s``; send it again later,
  e.g. HTTP 429, or an MQTT QoS 1 message not acknowledged), and the
  database's own errors (SQLAlchemy/OS errors; ``schema.runtime.db.storage_failure``
  maps them to ``DATABASE_BUSY`` / ``DATABASE_UNAVAILABLE``): nothing was committed.
- Times below 2**28 s are relative to the call (RFC 8428); readings timed more
  than ``sensor_max_future_s`` ahead or older than ``sensor_raw_retention_s``
  are refused (``TIME_OUT_OF_RANGE``).
- Safe to call again with the same pack (at-least-once transports): the
  repeats come back ``duplicate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from node.sensors.errors import IngestBusy
from node.sensors.gate import decode_pack
from node.sensors.models import Device, IngestResult, Outcome, RecordResult
from node.sensors.service import SensorStore

__all__ = ["Device", "IngestResult", "Outcome", "RecordResult", "ingest"]


async def ingest(sensors: SensorStore, device: Device, pack: bytes | Sequence[Any]) -> IngestResult:
    """Store a SenML pack from ``device`` and evaluate the rules it touches (see the module)."""
    resolved = decode_pack(pack, max_records=sensors.settings.sensor_max_batch)
    try:
        async with sensors.gate.slot():
            result = await sensors.store(device, resolved)
    except IngestBusy:
        sensors.metrics.busy.inc()
        raise
    sensors.metrics.taken(result)
    return result
