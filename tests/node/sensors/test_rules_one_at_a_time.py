"""A device that sends one reading per pack, at uneven intervals, still raises its rule's flag.

The rule is judged around each new reading; the replay must reach back to the
reading that began the run, not only ``duration`` before the new one, or a run
of single readings never spans the duration (every interval has jitter).
"""

from __future__ import annotations

from tests.node.sensors.conftest import SensorRig, at, high_water, water_level


async def test_single_readings_at_uneven_intervals_raise_one_flag_after_the_duration(
    sensors: SensorRig,
) -> None:
    device = await sensors.device()
    await sensors.create_sensor(
        water_level("cp-b2", device.client_id, [high_water(level=0.3, clear=0.15, duration_s=3)])
    )
    times = [0.0, 0.37, 1.21, 1.93, 2.71, 3.14]  # above the level from 0 s: 3.14 s >= 3 s
    raised: list[str] = []
    for i, t in enumerate(times):
        body = await sensors.sent(
            device, [{"n": "cp-b2", "u": "m", "t": at(t), "v": 0.5 + i / 100}]
        )
        if t < 3:
            assert body["flagsRaised"] == [], t
        raised += body["flagsRaised"]
    assert len(raised) == 1
    flags = await sensors.flags()
    assert [f["id"] for f in flags] == raised
    assert [e["v"] for e in flags[0]["evidence"]] == [0.5 + i / 100 for i in range(len(times))]
