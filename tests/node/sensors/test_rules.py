"""Rules in event time at a real node: out-of-order readings, hysteresis, rate, silence.

Readings carry their own times (a fixed morning, ``at``): the rules judge
them in that order, whatever order the packs arrive in.
"""

from __future__ import annotations

import asyncio

from tests.node.flags.conftest import eventually
from tests.node.sensors.conftest import (
    SensorRig,
    at,
    high_water,
    iso_at,
    local,
    water_level,
)


def _pack(code: str, readings: list[tuple[float, float]]) -> list[dict[str, object]]:
    """A pack whose first record carries the base name and unit."""
    records: list[dict[str, object]] = [{"t": at(t), "v": v} for t, v in readings]
    records[0] = {"bn": code, "bu": "m", **records[0]}
    return records


async def test_out_of_order_readings_are_judged_in_event_time(sensors: SensorRig) -> None:
    device = await sensors.device()
    sensor = await sensors.create_sensor(
        water_level("cp-b2", device.client_id, [high_water(level=0.8, clear=0.5, duration_s=60)])
    )
    # The newest readings first: high at 100 s, back down at 110 s. Alone, no alarm held 60 s.
    first = await sensors.sent(device, _pack("cp-b2", [(100, 0.9), (110, 0.3)]))
    assert first["flagsRaised"] == []
    # Late: high since 40 s. In event time the level was >= 0.8 from 40 s to 100 s (60 s)
    # and fell below the clear level at 110 s: one alarm, raised and cleared.
    late = await sensors.sent(device, _pack("cp-b2", [(70, 0.95), (40, 0.85)]))
    assert len(late["flagsRaised"]) == 1
    assert late["flagsCleared"] == late["flagsRaised"]
    # Later still, one lone high reading long before: held for no duration, no flag.
    lone = await sensors.sent(device, _pack("cp-b2", [(-300, 0.9)]))
    assert lone["flagsRaised"] == []
    [flag] = await sensors.flags()
    assert flag["id"] == late["flagsRaised"][0]
    assert flag["source"] == {"sensor": sensor, "rule": "high-water", "unit": "m", "level": 0.8}
    # The evidence: the run that held, in event time, up to the reading that completed it.
    assert [e["v"] for e in flag["evidence"]] == [0.85, 0.95, 0.9]
    hops = {h["hop"]: h["at"] for h in flag["timeline"]}
    assert hops["condition_cleared"].startswith(iso_at(110))
    state = await sensors.sensor(sensor)
    assert (state["status"], state["alarmRules"]) == ("OK", [])
    assert state["lastValue"] == 0.3  # the latest in event time, not the last to arrive


async def test_a_level_flapping_around_its_threshold_raises_one_flag(sensors: SensorRig) -> None:
    device = await sensors.device()
    sensor = await sensors.create_sensor(
        water_level("cp-b2", device.client_id, [high_water(level=0.8, clear=0.5, duration_s=0)])
    )
    flapping = [0.79, 0.81, 0.78, 0.83, 0.76, 0.82, 0.6, 0.84, 0.55, 0.81]
    raised: list[str] = []
    for n, value in enumerate(flapping):  # one pack per reading, as a device would send
        raised += (await sensors.sent(device, _pack("cp-b2", [(n * 10, value)])))["flagsRaised"]
    assert len(raised) == 1  # hysteresis: nothing above the clear level (0.5) ends the alarm
    state = await sensors.sensor(sensor)
    assert (state["status"], state["alarmRules"]) == ("ALARM", ["high-water"])
    cleared = await sensors.sent(device, _pack("cp-b2", [(200, 0.45)]))
    assert cleared["flagsCleared"] == raised
    again = await sensors.sent(device, _pack("cp-b2", [(210, 0.9)]))
    assert len(again["flagsRaised"]) == 1  # a new crossing after the clear: a new flag
    assert len(await sensors.flags()) == 2
    episodes = await sensors.rig.node_sql(
        "SELECT rule_id, cleared_at IS NULL FROM sensor_episodes WHERE sensor_id = :s"
        " ORDER BY started_at", s=local(sensor),
    )  # fmt: skip
    assert [tuple(e) for e in episodes] == [("high-water", False), ("high-water", True)]


async def test_a_rate_rule_raises_on_a_fast_rise(sensors: SensorRig) -> None:
    device = await sensors.device()
    rise = {"id": "fast-rise", "kind": "RATE", "level": 0.3, "windowS": 600, "severity": "III"}
    await sensors.create_sensor(water_level("river-1", device.client_id, [rise]))
    slow = [(n * 600, 0.1 * n) for n in range(5)]  # 0.1 m per 10 minutes: no alarm
    assert (await sensors.sent(device, _pack("river-1", slow)))["flagsRaised"] == []
    fast = [(3000, 0.6), (3300, 0.9)]  # +0.5 m within 10 minutes
    [flag_id] = (await sensors.sent(device, _pack("river-1", fast)))["flagsRaised"]
    [flag] = await sensors.flags()
    assert flag["id"] == flag_id
    assert flag["estimatedSeverity"] == "III"
    assert [e["v"] for e in flag["evidence"]][-2:] == [0.6, 0.9]


async def test_a_silent_sensor_goes_stale_with_one_maintenance_flag_until_it_reports(
    sensors: SensorRig,
) -> None:
    device = await sensors.device()
    silence = {"id": "silent", "kind": "SILENCE", "silenceS": 1, "severity": "IV"}
    sensor = await sensors.create_sensor(water_level("cp-b2", device.client_id, [silence]))

    async def stale() -> bool:
        return (await sensors.sensor(sensor))["status"] == "STALE"

    await eventually(stale, timeout_s=30)
    await eventually(lambda: _count_flags(sensors), timeout_s=30)
    await asyncio.sleep(0.6)  # more check rounds (every 0.2 s) pass: still one flag
    [flag] = await sensors.flags()
    assert flag["category"] == "sensor_fault"
    assert flag["source"]["rule"] == "silent"
    reported = await sensors.sent(device, [{"bn": "cp-b2", "t": -1, "v": 0.1}])
    assert reported["flagsCleared"] == [flag["id"]]
    first = await sensors.rig.node_sql(
        "SELECT cleared_at FROM sensor_episodes WHERE sensor_id = :s ORDER BY id", s=local(sensor)
    )
    assert first[0][0] is not None  # that silence ended with the reading


async def _count_flags(sensors: SensorRig) -> bool:
    return len(await sensors.flags()) >= 1
