"""`linli sensors simulate`: devices sending a scenario's readings to a node (HTTP or MQTT)."""

from __future__ import annotations

import asyncio
import enum
import random
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from node.simulator.scenario import SCENARIOS, Scenario, SimulatedSensor
from node.simulator.transports import (
    HttpTransport,
    MqttTransport,
    Reading,
    SendRefused,
    Transport,
)

__all__ = ["READINGS_PATH", "app", "simulate_scenario"]

READINGS_PATH = "/sensors/readings"
"""The node's batch endpoint for SenML readings (bearer token with ``sensors:write``)."""

app = typer.Typer(help="Sensors: simulate devices that send readings.", no_args_is_help=True)
console = Console()


class TransportKind(enum.StrEnum):
    HTTP = "http"
    MQTT = "mqtt"


def _crossing(sensor: SimulatedSensor, before: float | None, value: float) -> str:
    if sensor.alarm is None or before is None:
        return ""
    if before < sensor.alarm <= value:
        return f"  [bold red]▲ above its alarm level {sensor.alarm:g} {sensor.unit}[/]"
    if sensor.clear is not None and before > sensor.clear >= value:
        return f"  [green]▼ below its clear level {sensor.clear:g} {sensor.unit}[/]"
    return ""


async def simulate_scenario(
    scenario: Scenario,
    transport: Transport,
    *,
    speed: float,
    interval_s: float,
    minutes: float,
    seed: int,
    quiet: bool = False,
) -> int:
    """Send the scenario's readings every ``interval_s``, ``speed`` times faster than real time.

    Each reading is stamped with the wall-clock time it is sent at; the curves advance
    ``speed * interval_s`` simulated seconds a step. Returns how many readings were sent.
    """
    rng = random.Random(seed)  # noqa: S311 - measurement noise, not a secret
    started = time.monotonic()
    sent = 0
    last: dict[str, float] = {}
    step = 0
    while True:
        minute = step * interval_s * speed / 60
        if minute > minutes:
            break
        values = scenario.measured(minute, rng)
        now = datetime.now(UTC)
        readings = [Reading(s.code, s.unit, now, values[s.code]) for s in scenario.sensors]
        await transport.send(readings)
        sent += len(readings)
        if not quiet:
            shown = "  ".join(
                f"{s.code} {values[s.code]:7.3f} {s.unit}"
                + _crossing(s, last.get(s.code), values[s.code])
                for s in scenario.sensors
            )
            console.print(
                f"{now:%H:%M:%S} sim {int(minute):3d}:{int(minute * 60) % 60:02d}  {shown}"
            )
        last = values
        step += 1
        await asyncio.sleep(max(0.0, started + step * interval_s - time.monotonic()))
    return sent


@app.command()
def simulate(
    node_url: Annotated[
        str | None, typer.Option(help=f"Base URL of the node (HTTP: POST {READINGS_PATH})")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="LINLI_DEVICE_TOKEN",
            help="HTTP: the device's bearer token (scope sensors:write, audience the node)",
        ),
    ] = None,
    transport: Annotated[TransportKind, typer.Option(help="http or mqtt")] = TransportKind.HTTP,
    broker: Annotated[str, typer.Option(help="MQTT: the broker")] = "mqtt://127.0.0.1:1883",
    node_id: Annotated[
        str | None, typer.Option(help="MQTT: the node's id (its division code), in the topics")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="MQTT: the device's client id, in the topics")
    ] = None,
    mqtt_username: Annotated[str | None, typer.Option(help="MQTT: user name at the broker")] = None,
    mqtt_password: Annotated[
        str | None,
        typer.Option(envvar="LINLI_DEVICE_MQTT_PASSWORD", help="MQTT: password at the broker"),
    ] = None,
    topic_prefix: Annotated[str, typer.Option(help="MQTT: first level of the topics")] = "linli",
    scenario: Annotated[str, typer.Option(help="rain: a storm floods a car park")] = "rain",
    speed: Annotated[
        float,
        typer.Option(min=0.001, help="Simulated seconds per real second (60: a minute a second)"),
    ] = 60.0,
    interval: Annotated[
        float, typer.Option(min=0.01, help="Real seconds between two readings of each sensor")
    ] = 1.0,
    minutes: Annotated[
        float | None, typer.Option(help="Simulated minutes to run; default: the whole scenario")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the measurement noise")] = 1,
    quiet: Annotated[bool, typer.Option(help="No line per step; only the summary")] = False,
) -> None:
    """Drive a scenario's sensors: readings stamped with the time they are sent, curves sped up.

    Rain: 90 simulated minutes; the car park's water level passes 0.30 m at minute 21
    and falls below 0.15 m at minute 73 (at --speed 60: 21 s and 73 s after the start).
    """
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    chosen = SCENARIOS[scenario]()
    sender: Transport
    if transport is TransportKind.HTTP:
        if node_url is None or token is None:
            raise typer.BadParameter("--transport http needs --node-url and --token")
        sender = HttpTransport(node_url.rstrip("/") + READINGS_PATH, token)
        target = node_url
    else:
        if node_id is None or device is None:
            raise typer.BadParameter("--transport mqtt needs --node-id and --device")
        sender = MqttTransport(
            broker,
            node=node_id,
            device=device,
            prefix=topic_prefix,
            username=mqtt_username,
            password=mqtt_password,
        )
        target = f"{broker} as {device}"
    console.print(
        f"simulating {chosen.name} ({', '.join(s.code for s in chosen.sensors)}) over "
        f"{transport.value} to {target}, {speed:g}x, a reading every {interval:g} s"
    )

    async def run() -> int:
        try:
            return await simulate_scenario(
                chosen,
                sender,
                speed=speed,
                interval_s=interval,
                minutes=minutes if minutes is not None else chosen.minutes,
                seed=seed,
                quiet=quiet,
            )
        finally:
            await sender.aclose()

    try:
        sent = asyncio.run(run())
    except SendRefused as error:
        console.print(f"[red]the node refused the readings: {error}[/]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    console.print(f"sent {sent} readings")
