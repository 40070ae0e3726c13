"""Sensor readings in, and how long a threshold crossing takes to reach a department.

Run: ``.venv/bin/python bench/sensors.py`` (no options; a few minutes).

A hub and three community nodes (``linli node serve``, SQLite each) run as
child processes exactly as in ``bench/flag_lag.py`` (its ``start_district``),
the nodes subscribed to a Mosquitto of the bench's own (persistence on,
unlimited queues) on a free port. The duty desk follows ``flagEvents`` over
graphql-transport-ws.

Throughput at the first node, each path on its own sensor (a water level with a
rule that the values never reach, so each reading is judged as in production):

- HTTP: ``READINGS`` readings in SenML packs of ``PACK`` records, ``HTTP_SENDERS``
  senders at once, to ``POST /sensors/readings`` with a device token;
- MQTT: the same number, one reading per message (what a device sends), QoS 1,
  ``MQTT_IN_FLIGHT`` publishes outstanding, timed until the node has stored the last;
- baseline: a plain ``INSERT`` of the same rows into the same table of the same
  database, ``PACK`` rows a transaction, from the bench process.

Lag: ``CROSSINGS`` sensors each with a rule ``above`` 1.0 with no duration; one
at a time, a reading of 2.0 is sent (over MQTT, then over HTTP) and timed from
just before it is sent until the duty desk's subscription sees the flag routed.
In the same run, the flag chain's own lag: ``flag_lag.phase_up``, flags raised by
a person with ``raiseRiskFlag`` and timed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import orjson
import sqlalchemy as sa
from _harness import (
    free_port,
    load_line,
    p50,
    p99,
    register_clients,
    run_bench,
    scratch_folder,
    spawn,
    token,
)
from flag_lag import NODES, EventLog, Subscriber, phase_up, start_district

from node.mqtt import sensor_topic
from node.tables import SENSORS
from schema.enums import OrgKind
from schema.runtime.db import Database

READINGS = 5000
PACK = 100
HTTP_SENDERS = 2
MQTT_IN_FLIGHT = 100
MQTT_BATCH = 100  # LINLI_MQTT_BATCH's default
CROSSINGS = 30
CROSSING_TIMEOUT_S = 15.0
STORED_TIMEOUT_S = 300.0
NODE = NODES[0]
DISTRICT = "110105"
CREATE = "mutation ($i: SensorCreateInput!) { createSensor(input: $i) { id } }"


# --- a broker of the bench's own ----------------------------------------------------


def start_broker(folder: Path) -> str:
    """Mosquitto on a free port, persistence in ``folder``; its URL."""
    port = free_port()
    (folder / "mosquitto").mkdir()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {folder / 'mosquitto'}/\nmax_queued_messages 0\n"
        # As README advises: unacknowledged messages in flight to the node = its batch size.
        f"max_inflight_messages {MQTT_BATCH}\n"
        f"user {getpass.getuser()}\n"
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    spawn([binary, "-c", str(conf)], log=folder / "mosquitto.log", stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return f"mqtt://127.0.0.1:{port}"
        time.sleep(0.05)
    raise TimeoutError("mosquitto did not start")


# --- sensors and devices --------------------------------------------------------------


def water_level(code: str, device: str, level: float) -> dict[str, Any]:
    return {
        "name": f"水位 {code}",
        "kind": "WATER_LEVEL",
        "code": code,
        "unit": "m",
        "category": "flooding",
        "location": {"coordinates": [116.4435, 39.9087]},
        "device": device,
        "rules": [
            {"id": "high-water", "kind": "ABOVE", "level": level, "durationS": 0, "severity": "II"}
        ],
    }


async def create_sensor(
    http: aiohttp.ClientSession, node_url: str, staff: str, sensor: dict[str, Any]
) -> str:
    """The new sensor's local id."""
    async with http.post(
        f"{node_url}/graphql",
        json={"query": CREATE, "variables": {"i": sensor}},
        headers={"Authorization": f"Bearer {staff}"},
    ) as response:
        body = await response.json()
    if body.get("errors"):
        raise RuntimeError(f"createSensor: {body['errors']}")
    sensor_id: str = body["data"]["createSensor"]["id"]
    return sensor_id.rsplit(":", 1)[1]


def pack(code: str, start: datetime, values: list[float]) -> bytes:
    return orjson.dumps(
        [
            {"n": code, "u": "m", "t": (start + timedelta(milliseconds=i)).timestamp(), "v": v}
            for i, v in enumerate(values)
        ]
    )


async def stored(database_url: str, sensor_id: str) -> int:
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            count = await session.scalar(
                sa.select(sa.func.count()).where(SENSORS.readings.c.sensor_id == sensor_id)
            )
            return int(count or 0)
    finally:
        await db.dispose()


async def wait_stored(database_url: str, sensor_id: str, count: int) -> float:
    """Until ``count`` readings of the sensor are stored; when (perf_counter)."""
    deadline = time.monotonic() + STORED_TIMEOUT_S
    while (have := await stored(database_url, sensor_id)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {have} of {count} readings stored")
        await asyncio.sleep(0.05)
    return time.perf_counter()


# --- throughput -------------------------------------------------------------------------


async def http_throughput(
    http: aiohttp.ClientSession, url: str, device_token: str, code: str, start: datetime
) -> float:
    """Readings a second over HTTP, packs of ``PACK``."""
    packs = [
        pack(code, start + timedelta(seconds=i), [0.1] * PACK) for i in range(READINGS // PACK)
    ]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in packs:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {device_token}", "Content-Type": "application/senml+json"}

    async def sender() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            while True:
                async with http.post(
                    f"{url}/sensors/readings", data=body, headers=headers
                ) as response:
                    await response.read()
                    if response.status == 200:
                        break
                    if response.status != 429:
                        raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
                await asyncio.sleep(0.05)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(HTTP_SENDERS)))
    return READINGS / (time.perf_counter() - started)


async def mqtt_throughput(
    broker: str, device: str, code: str, start: datetime, database_url: str, sensor_id: str
) -> float:
    """Readings a second over MQTT, one a message, until the node has stored the last."""
    host, port = broker.removeprefix("mqtt://").split(":")
    topic = sensor_topic("linli", NODE, device, code)
    slots = asyncio.Semaphore(MQTT_IN_FLIGHT)
    async with aiomqtt.Client(
        host, int(port), identifier=f"bench-{device}", max_inflight_messages=MQTT_IN_FLIGHT
    ) as client:
        client.pending_calls_threshold = MQTT_IN_FLIGHT + 1  # no warning per publish

        async def publish(i: int) -> None:
            async with slots:
                body = pack(code, start + timedelta(milliseconds=i), [0.1])
                await client.publish(topic, body, qos=1, timeout=60)

        started = time.perf_counter()
        await asyncio.gather(*(publish(i) for i in range(READINGS)))
        published = time.perf_counter()
    done = await wait_stored(database_url, sensor_id, READINGS)
    print(
        f"MQTT: the broker acknowledged the last publish after {published - started:.2f} s, "
        f"the node stored the last reading after {done - started:.2f} s",
        file=sys.stderr,
    )
    return READINGS / (done - started)


async def plain_insert(database_url: str, sensor_id: str, start: datetime) -> float:
    """Rows a second: the same rows, ``PACK`` a transaction, straight into the table."""
    db = Database(database_url)
    now = datetime.now(UTC)
    rows = [
        {
            "sensor_id": sensor_id,
            "t": start + timedelta(milliseconds=i),
            "value": 0.1,
            "device": "bench",
            "received_at": now,
        }
        for i in range(READINGS)
    ]
    try:
        started = time.perf_counter()
        for at in range(0, READINGS, PACK):
            async with db.transaction() as session:
                await session.execute(sa.insert(SENSORS.readings), rows[at : at + PACK])
        return READINGS / (time.perf_counter() - started)
    finally:
        await db.dispose()


# --- lag ------------------------------------------------------------------------------------


async def crossing_lags(
    log: EventLog, send: Callable[[int], Awaitable[None]], count: int
) -> tuple[list[float], int]:
    """Lag (ms) of ``count`` crossings sent one at a time; and how many were not seen."""
    lags: list[float] = []
    missing = 0
    for i in range(count):
        known = set(log.first)
        started = time.perf_counter()
        await send(i)
        deadline = time.monotonic() + CROSSING_TIMEOUT_S
        while not (new := set(log.first) - known) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
        if not new:
            missing += 1
            continue
        lags.append((log.first[new.pop()].at - started) * 1000)
        await asyncio.sleep(0.1)
    return lags, missing


async def run() -> None:
    started = time.monotonic()
    with scratch_folder("linli-sensors-bench-") as folder:
        broker = start_broker(folder)
        os.environ["LINLI_MQTT_URL"] = broker  # the nodes subscribe (start_district's env)
        os.environ["LINLI_SENSOR_CHECK_S"] = "60"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            print("starting a hub and 3 nodes …", file=sys.stderr, flush=True)
            district = await start_district(http, folder)
            node_url = district.nodes[NODE].url
            node_db = f"sqlite+aiosqlite:///{folder}/node-{NODE}.db"
            staff = district.staff[NODE]
            devices = await register_clients(
                district.hub_db_url, [(NODE, OrgKind.COMMUNITY, "sensors:write")], DISTRICT
            )
            device_id, _ = devices[NODE]
            device_token = await token(http, district.hub.url, devices[NODE], "sensors:write", NODE)
            ids = {
                name: await create_sensor(http, node_url, staff, water_level(name, device_id, 99))
                for name in ("bench-http", "bench-mqtt", "bench-plain")
            }
            crossing = [
                await create_sensor(http, node_url, staff, water_level(f"x-{i}", device_id, 1.0))
                for i in range(2 * CROSSINGS)
            ]
            assert len(crossing) == 2 * CROSSINGS
            base = datetime.now(UTC) - timedelta(days=1)
            print("throughput: plain insert, HTTP, MQTT …", file=sys.stderr, flush=True)
            plain = await plain_insert(node_db, ids["bench-plain"], base)
            over_http = await http_throughput(http, node_url, device_token, "bench-http", base)
            over_mqtt = await mqtt_throughput(
                broker, device_id, "bench-mqtt", base, node_db, ids["bench-mqtt"]
            )

            print("lag: crossings over MQTT and HTTP, then person-raised flags …", file=sys.stderr)
            log = EventLog()
            subscriber = await Subscriber.open(district.ws_url, district.department, 0, log)
            host, port = broker.removeprefix("mqtt://").split(":")
            async with aiomqtt.Client(host, int(port), identifier="bench-crossings") as client:

                async def over_mqtt_crossing(i: int) -> None:
                    topic = sensor_topic("linli", NODE, device_id, f"x-{i}")
                    body = pack(f"x-{i}", datetime.now(UTC), [2.0])
                    await client.publish(topic, body, qos=1, timeout=10)

                mqtt_lag, mqtt_missing = await crossing_lags(log, over_mqtt_crossing, CROSSINGS)
            headers = {
                "Authorization": f"Bearer {device_token}",
                "Content-Type": "application/senml+json",
            }

            async def over_http_crossing(i: int) -> None:
                body = pack(f"x-{CROSSINGS + i}", datetime.now(UTC), [2.0])
                async with http.post(
                    f"{node_url}/sensors/readings", data=body, headers=headers
                ) as response:
                    await response.read()

            http_lag, http_missing = await crossing_lags(log, over_http_crossing, CROSSINGS)
            chain = await phase_up(http, district, log)
            await subscriber.close()
    print(
        f"sensor readings: hub + {len(NODES)} nodes (linli ... serve, SQLite), Mosquitto of "
        f"the bench's own; readings at node {NODE}"
    )
    print()
    print(f"ingest throughput, {READINGS} readings each (readings/s; ratio to plain insert):")
    print(f"  {'plain INSERT, ' + str(PACK) + ' rows a transaction':<44}{plain:>9.0f}   1.00x")
    print(
        f"  {'HTTP, SenML packs of ' + str(PACK) + f', {HTTP_SENDERS} senders':<44}"
        f"{over_http:>9.0f}  {over_http / plain:>5.2f}x"
    )
    print(
        f"  {'MQTT QoS 1, one reading a message':<44}{over_mqtt:>9.0f}  {over_mqtt / plain:>5.2f}x"
    )
    print()
    print("lag to the duty desk's flagEvents subscription (ms):")
    print(f"  {'':<46}{'p50':>8}{'p99':>8}{'max':>8}{'n':>5}")
    rows = [
        ("crossing reading over MQTT -> flag.routed", mqtt_lag),
        ("crossing reading over HTTP -> flag.routed", http_lag),
        ("raiseRiskFlag by a person -> flag.routed", chain.lag_ms),
    ]
    for name, samples in rows:
        if samples:
            print(
                f"  {name:<46}{p50(samples):>8.1f}{p99(samples):>8.1f}{max(samples):>8.1f}"
                f"{len(samples):>5}"
            )
    if mqtt_lag and chain.lag_ms:
        print(
            f"  MQTT crossing / flag chain: p50 {p50(mqtt_lag) / p50(chain.lag_ms):.2f}x, "
            f"p99 {p99(mqtt_lag) / p99(chain.lag_ms):.2f}x"
        )
    if http_lag and chain.lag_ms:
        print(
            f"  HTTP crossing / flag chain: p50 {p50(http_lag) / p50(chain.lag_ms):.2f}x, "
            f"p99 {p99(http_lag) / p99(chain.lag_ms):.2f}x"
        )
    print(
        f"  not seen within {CROSSING_TIMEOUT_S:g} s: MQTT {mqtt_missing}, HTTP {http_missing}, "
        f"person-raised {chain.missing}"
    )
    print()
    print(load_line(time.monotonic() - started))


def main() -> None:
    """Run the bench; stop every child process whatever happens."""
    run_bench(run())


if __name__ == "__main__":
    main()
