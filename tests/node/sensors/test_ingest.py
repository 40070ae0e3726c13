"""SenML over HTTP into a real node: bad input refused with codes, duplicates stored once.

Every pack goes to ``POST /sensors/readings`` of a running node with a real
OAuth token from the running hub; what was stored is read back from the
node's database.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson

from schema.enums import OrgKind
from tests.node.flags.conftest import metric
from tests.node.sensors.conftest import (
    CREATE,
    NEIGHBOUR,
    SensorRig,
    at,
    error_code,
    high_water,
    local,
    water_level,
)


def _codes(body: dict[str, object]) -> list[str | None]:
    results = body["results"]
    assert isinstance(results, list)
    return [r.get("code") if r["status"] == "refused" else r["status"] for r in results]


async def test_a_pack_that_is_no_senml_is_refused_whole_and_stores_nothing(
    sensors: SensorRig,
) -> None:
    device = await sensors.device()
    await sensors.create_sensor(water_level("cp-b2", device.client_id, [high_water()]))
    good = {"bn": "cp-b2", "bt": at(0), "u": "m", "v": 0.1}
    bad_packs: dict[str, bytes] = {
        "not JSON": b'[{"n": "cp-b2", "v": 0.1',
        "not an array": orjson.dumps(good),
        "a record that is no object": orjson.dumps([good, 5]),
        "bt not a number": orjson.dumps([{**good, "bt": "yesterday"}]),
        "bn not a string": orjson.dumps([{**good, "bn": 7}]),
        "a newer SenML version": orjson.dumps([{**good, "bver": 11}]),
        "a must-understand field": orjson.dumps([{**good, "unknown_": 1}]),
        "NaN": b'[{"bn": "cp-b2", "t": 0, "v": NaN}]',
    }
    for what, body in bad_packs.items():
        response = await sensors.send(device, body)
        assert response.status_code == 400, (what, response.text)
        assert error_code(response) == "SENML_INVALID", what
    assert await sensors.readings() == []


async def test_each_bad_record_is_refused_with_its_code_and_the_rest_stored(
    sensors: SensorRig,
) -> None:
    device = await sensors.device()
    other = await sensors.device()
    mine = await sensors.create_sensor(water_level("cp-b2", device.client_id, [high_water()]))
    await sensors.create_sensor(water_level("cp-b3", other.client_id, [high_water()]))
    now = time.time()
    pack = [
        {"bn": "cp-", "bu": "m", "n": "b2", "t": now - 60, "v": 0.10},  # base fields resolved
        {"n": "b2", "t": now - 50, "v": 0.12},  # bn and bu carried on
        {"n": "b2", "u": "cm", "t": now - 40, "v": 12},  # UNIT_MISMATCH
        {"n": "b2", "t": now + 86400, "v": 0.2},  # far future: TIME_OUT_OF_RANGE
        {"n": "b2", "t": now - 30 * 86400, "v": 0.2},  # older than raw retention
        {"n": "b3", "t": now - 30, "v": 0.3},  # another device's sensor: SENSOR_NOT_OWNED
        {"n": "b9", "t": now - 30, "v": 0.3},  # UNKNOWN_SENSOR
        {"n": "b2", "t": now - 20, "vs": "high"},  # SENML_NOT_NUMERIC
        {"n": "b2", "t": now - 20},  # no value: SENML_INVALID
        {"n": "b 2", "t": now - 20, "v": 0.1},  # not a SenML name: SENML_INVALID
        {"n": "b2", "t": -5, "v": 0.14},  # relative: 5 s before now (RFC 8428 4.5.3)
    ]
    body = await sensors.sent(device, pack, refused=8)
    assert _codes(body) == [
        "accepted",
        "accepted",
        "UNIT_MISMATCH",
        "TIME_OUT_OF_RANGE",
        "TIME_OUT_OF_RANGE",
        "SENSOR_NOT_OWNED",
        "UNKNOWN_SENSOR",
        "SENML_NOT_NUMERIC",
        "SENML_INVALID",
        "SENML_INVALID",
        "accepted",
    ]
    assert (body["accepted"], body["duplicate"], body["refused"]) == (3, 0, 8)
    stored = await sensors.readings()
    assert [v for _, v in stored] == [0.10, 0.12, 0.14]
    assert all(r["sensor"] == mine for r in body["results"][:2])
    relative = datetime.fromisoformat(body["results"][10]["time"])
    assert abs((datetime.now(UTC) - relative).total_seconds() - 5) < 30
    state = await sensors.sensor(mine)
    assert state["lastValue"] == 0.14
    assert state["status"] == "OK"
    assert (
        local(mine)
        == (await sensors.rig.node_sql("SELECT DISTINCT sensor_id FROM sensor_readings"))[0][0]
    )


async def test_only_a_device_of_the_owner_with_sensors_write_sends_readings(
    sensors: SensorRig,
) -> None:
    device = await sensors.device()
    await sensors.create_sensor(water_level("cp-b2", device.client_id, [high_water()]))
    pack = [{"bn": "cp-b2", "t": at(0), "v": 0.1}]
    reader = await sensors.client(scopes="incidents:read")
    neighbour = await sensors.client(scopes="sensors:write", org=NEIGHBOUR, kind=OrgKind.COMMUNITY)
    assert (await sensors.send("not-a-token", pack)).status_code == 401
    refused = await sensors.send(reader, pack)
    assert (refused.status_code, error_code(refused)) == (403, "FORBIDDEN")
    other_org = await sensors.send(neighbour, pack)
    assert other_org.status_code == 403
    assert await sensors.readings() == []


async def test_a_reading_is_stored_once_per_sensor_and_time(sensors: SensorRig) -> None:
    device = await sensors.device()
    sensor = await sensors.create_sensor(water_level("cp-b2", device.client_id, [high_water()]))
    now = time.time()
    pack = [
        {"bn": "cp-b2", "bu": "m", "t": now - 30, "v": 0.1},
        {"t": now - 20, "v": 0.2},
        {"t": now - 20, "v": 0.25},  # same time in the same pack: a duplicate
    ]
    first = await sensors.sent(device, pack)
    assert _codes(first) == ["accepted", "accepted", "duplicate"]
    again = await sensors.sent(device, pack)  # an at-least-once transport sends it again
    assert _codes(again) == ["duplicate", "duplicate", "duplicate"]
    assert [v for _, v in await sensors.readings(local(sensor))] == [0.1, 0.2]
    # The series counts each reading once.
    state = await sensors.sensor(sensor)
    assert sum(point["count"] for point in state["series"]) == 2
    metrics = await sensors.rig.metrics()
    assert metric(metrics, 'linli_node_sensor_records_total{outcome="accepted"}') == 2
    assert metric(metrics, 'linli_node_sensor_records_total{outcome="duplicate"}') == 4


async def test_a_sensor_code_names_one_sensor(sensors: SensorRig) -> None:
    device = await sensors.device()
    await sensors.create_sensor(water_level("cp-b2", device.client_id, [high_water()]))
    assert sensors.staff is not None
    code = await sensors.staff.error_code(CREATE, {"i": water_level("cp-b2", device.client_id, [])})
    assert code == "SENSOR_CODE_TAKEN"
    [[count]] = await sensors.rig.node_sql("SELECT count(*) FROM sensors")
    assert count == 1


async def test_a_rule_that_cannot_work_is_refused(sensors: SensorRig) -> None:
    assert sensors.staff is not None
    backwards = high_water(level=0.8, clear=0.9)  # clears above its alarm: no hysteresis
    code = await sensors.staff.error_code(
        CREATE, {"i": water_level("cp-b2", "device-1", [backwards])}
    )
    assert code == "INVALID_SENSOR_RULE"
    no_window = {"id": "rise", "kind": "RATE", "level": 0.3}
    code = await sensors.staff.error_code(
        CREATE, {"i": water_level("cp-b2", "device-1", [no_window])}
    )
    assert code == "INVALID_SENSOR_RULE"
