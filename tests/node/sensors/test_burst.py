"""A burst of 10,000 readings over HTTP: each accepted or refused with 429, none lost.

The node stores one pack at a time (``sensor_max_inflight`` 1) and a pack
waits at most 0.2 s for its turn, so a burst of 20 concurrent packs is
back-pressured: the ones refused get HTTP 429 with ``Retry-After``, nothing of
them is stored, and the device sends them again. At the end every reading is
counted once: in the answers and in the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.node.flags.conftest import FlagRig
from tests.node.sensors.conftest import (
    Device,
    SensorRig,
    error_code,
    high_water,
    local,
    start,
    water_level,
)

READINGS = 10_000
PACKS = 20


@pytest.fixture
async def busy(rig: FlagRig) -> AsyncIterator[SensorRig]:
    built = await start(rig, sensor_max_inflight=1, sensor_queue_wait_s=0.2)
    try:
        yield built
    finally:
        await built.close()


async def _send_until_taken(
    sensors: SensorRig, device: Device, pack: list[dict[str, Any]], refusals: list[str]
) -> dict[str, Any]:
    while True:
        response = await sensors.send(device, pack)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        assert response.status_code == 429, response.text
        assert error_code(response) == "INGEST_BUSY"
        retry_after = int(response.headers["Retry-After"])
        assert retry_after >= 1
        refusals.append(response.headers["Retry-After"])
        await asyncio.sleep(retry_after)


async def test_a_burst_of_10000_readings_is_stored_or_back_pressured_never_dropped(
    busy: SensorRig,
) -> None:
    device = await busy.device()
    sensor = await busy.create_sensor(
        water_level("cp-b2", device.client_id, [high_water(level=5.0, clear=4.0)])
    )
    base = time.time() - 3600
    per_pack = READINGS // PACKS
    packs = [
        [
            {"t": i * 0.01, "v": 0.1 + (i % 7) * 0.01}
            | ({"bn": "cp-b2", "bu": "m", "bt": base + p * per_pack * 0.01} if i == 0 else {})
            for i in range(per_pack)
        ]
        for p in range(PACKS)
    ]
    # One pack of all 10,000 is refused whole, with its reason, not cut short.
    whole = [{"bn": "cp-b2", "bt": base, "t": i * 0.01, "v": 0.1} for i in range(READINGS)]
    too_big = await busy.send(device, orjson.dumps(whole))
    assert too_big.status_code in (400, 413)
    assert error_code(too_big) in {"SENML_TOO_MANY_RECORDS", "BODY_TOO_LARGE"}

    refusals: list[str] = []
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(_send_until_taken(busy, device, pack, refusals) for pack in packs)
    )
    took = time.perf_counter() - started
    accepted = sum(a["accepted"] for a in answers)
    duplicate = sum(a["duplicate"] for a in answers)
    refused = sum(a["refused"] for a in answers)
    print(f"{READINGS} readings in {PACKS} packs: {took:.1f} s, {len(refusals)} answers 429")
    assert (accepted, duplicate, refused) == (READINGS, 0, 0)
    assert refusals, "one pack at a time and a 0.2 s wait: a burst of 20 is back-pressured"
    [[stored]] = await busy.rig.node_sql(
        "SELECT count(*) FROM sensor_readings WHERE sensor_id = :s", s=local(sensor)
    )
    assert stored == READINGS
    assert sum(p["count"] for p in (await busy.sensor(sensor))["series"]) == READINGS
