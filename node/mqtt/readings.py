"""The node's sink for MQTT messages: their SenML packs into ``node.sensors.ingest``.

A message's topic names the device and the sensor. The device writes as a device
of this node's own organisation (``Device(org, client_id)``); ``ingest`` checks
that the sensor is the device's. Every record of the pack must name the topic's
sensor: a pack that names none is read as that sensor's (``bn`` = the sensor's
code), a record naming another sensor is refused (``SENSOR_TOPIC_MISMATCH``).

A batch is stored with one ``ingest`` call per device: each message's pack is
resolved on its own (a malformed one is refused alone, ``SENML_INVALID``), its
records are written out resolved (absolute time, unit, value) and joined, and
the results are handed back message by message. ``IngestBusy`` and the storage
errors propagate: the subscriber stores the batch again, acknowledging nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from node.mqtt.sink import DeviceMessage, IngestOutcome, ReadingsSink
from node.sensors import Device, Outcome, SenmlInvalid, SensorStore, ingest
from node.sensors.gate import decode_pack
from node.sensors.senml import ResolvedRecord
from schema.errors import InvalidInput

__all__ = ["TOPIC_MISMATCH", "ingest_sink"]

TOPIC_MISMATCH = "SENSOR_TOPIC_MISMATCH"
"""A record names a sensor other than the one its message's topic names."""


def _named(pack: list[Any], sensor: str) -> list[Any]:
    """The pack, read as ``sensor``'s when none of its records names a sensor."""
    if pack and all(isinstance(r, dict) and "bn" not in r and "n" not in r for r in pack):
        return [{**pack[0], "bn": sensor}, *pack[1:]]
    return pack


def _resolved(message: DeviceMessage, max_records: int) -> list[ResolvedRecord]:
    """The message's records, resolved; raises ``SenmlInvalid`` / ``InvalidInput``."""
    try:
        pack = orjson.loads(message.payload)
    except orjson.JSONDecodeError as exc:
        raise SenmlInvalid(f"the payload is not JSON: {exc}", field="(body)") from exc
    if not isinstance(pack, list):
        raise SenmlInvalid("a SenML pack is a JSON array of records", field="(body)")
    return decode_pack(_named(pack, message.sensor), max_records=max_records)


def _record(record: ResolvedRecord) -> dict[str, Any]:
    assert record.time is not None
    body: dict[str, Any] = {"n": record.name, "t": record.time.timestamp(), "v": record.value}
    if record.unit is not None:
        body["u"] = record.unit
    return body


def ingest_sink(store: SensorStore, org: str) -> ReadingsSink:
    """A sink that stores messages through ``node.sensors.ingest`` as devices of ``org``."""
    max_records = store.settings.sensor_max_batch

    async def sink(batch: Sequence[DeviceMessage]) -> list[IngestOutcome]:
        outcomes: list[IngestOutcome | None] = [None] * len(batch)
        # Per device: the joined records, and for each message where its records start.
        joined: dict[str, list[dict[str, Any]]] = {}
        spans: dict[str, list[tuple[int, int, tuple[str, ...]]]] = {}
        for position, message in enumerate(batch):
            try:
                records = _resolved(message, max_records)
            except InvalidInput as refusal:  # SenmlInvalid is one
                outcomes[position] = IngestOutcome(refused=str(refusal.extensions["code"]))
                continue
            refusals: list[str] = []
            good: list[dict[str, Any]] = []
            for record in records:
                if record.error is not None:
                    refusals.append(record.error)
                elif record.name != message.sensor:
                    refusals.append(TOPIC_MISMATCH)
                else:
                    good.append(_record(record))
            own = joined.setdefault(message.device, [])
            spans.setdefault(message.device, []).append((position, len(good), tuple(refusals)))
            own.extend(good)
        for device, pending in joined.items():
            results = (
                (await ingest(store, Device(org=org, client_id=device), pending)).results
                if pending
                else ()
            )
            start = 0
            for position, count, early in spans[device]:
                mine = results[start : start + count]
                start += count
                outcomes[position] = IngestOutcome(
                    stored=sum(1 for r in mine if r.status is Outcome.ACCEPTED),
                    duplicates=sum(1 for r in mine if r.status is Outcome.DUPLICATE),
                    refused_readings=early
                    + tuple(r.code or "REFUSED" for r in mine if r.status is Outcome.REFUSED),
                )
        assert all(outcome is not None for outcome in outcomes)
        return [outcome for outcome in outcomes if outcome is not None]

    return sink
