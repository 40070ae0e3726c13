"""`linli demo`: a whole district on this machine: hub, three community nodes, seeded data."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography.fernet import Fernet
from rich.console import Console
from rich.markup import escape

from hub.demo.people import DEMO_PEOPLE, ensure_people
from hub.demo.seed import (
    AID_PROVIDER,
    AID_REQUESTER,
    COMMUNITIES,
    DISTRICT,
    EMERGENCY_OFFICE,
    EXAMPLE_AID_REQUEST,
    EXAMPLE_FLAG,
    EXAMPLE_FLAG_COMMUNITY,
    DemoCommunity,
)
from schema.scopes import Scope

__all__ = ["demo"]

console = Console()

HUB_ID = "hub-110105"
CAP_ADAPTER_ID = "adapter-cap"
CAP_SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "cap" / "samples"
TOKEN_TTL_S = 3600  # the demo's printed tokens last an hour (the hub's longest)


def _scopes(*scopes: Scope) -> str:
    return " ".join(scopes)


COMMUNITY_SCOPES = _scopes(
    Scope.RECORDS_WRITE,
    Scope.INCIDENTS_READ,
    Scope.RESOURCES_READ,
    Scope.SHELTERS_READ,
    Scope.VOLUNTEERS_READ,
    Scope.PII_READ,
    Scope.RISK_FLAG,
    Scope.ALERTS_READ,
    Scope.AUDIT_READ,
    Scope.AID_REQUEST,
    Scope.AID_RESPOND,
)
DEMO_CLIENTS: list[dict[str, str]] = (
    [
        {
            "client_id": "emergency-office",
            "org": EMERGENCY_OFFICE,
            "org_kind": "department",
            "label": "区应急管理局 District emergency management office",
            "scopes": _scopes(
                Scope.INCIDENTS_READ,
                Scope.RESOURCES_READ,
                Scope.SHELTERS_READ,
                Scope.VOLUNTEERS_READ,
                Scope.PII_READ,
                Scope.RISK_VERIFY,
                Scope.EMERGENCY_DECLARE,
                Scope.ALERTS_READ,
                Scope.AUDIT_READ,
            ),
        },
        {
            "client_id": "dashboard",
            "org": "110105400002",
            "org_kind": "department",
            "label": "区指挥中心大屏 District dashboard",
            "scopes": _scopes(
                Scope.INCIDENTS_READ, Scope.RESOURCES_READ, Scope.SHELTERS_READ, Scope.ALERTS_READ
            ),
        },
        {
            "client_id": "hub-admin",
            "org": "110105400009",
            "org_kind": "department",
            "label": "枢纽管理员 Hub administrator",
            "scopes": _scopes(Scope.ADMIN, Scope.RESOURCES_READ),
        },
    ]
    + [
        {
            "client_id": f"staff-{c.code}",
            "org": c.code,
            "org_kind": "community",
            "label": c.name,
            "scopes": COMMUNITY_SCOPES,
        }
        for c in COMMUNITIES
    ]
    + [
        {
            # The node's own client: it delivers the community's flags and aid steps to the hub.
            "client_id": f"node-{c.code}",
            "org": c.code,
            "org_kind": "community",
            "label": f"{c.name}: flag delivery (node)",
            "scopes": _scopes(Scope.RISK_FLAG, Scope.AID_REQUEST, Scope.AID_RESPOND),
        }
        for c in COMMUNITIES
    ]
    + [
        {
            # The car park's water-level gauge and the rain gauge: one device (linli sensors).
            "client_id": f"device-{EXAMPLE_FLAG_COMMUNITY}-carpark",
            "org": EXAMPLE_FLAG_COMMUNITY,
            "org_kind": "community",
            "label": "地下车库水位计与雨量计 Car park water level and rain gauges",
            "scopes": _scopes(Scope.SENSORS_WRITE),
        }
    ]
)
SENSOR_DEVICE = f"device-{EXAMPLE_FLAG_COMMUNITY}-carpark"
SIMULATOR_SPEED = 120.0  # the storm's 90 minutes in 45 s: the alarm about 10 s in
SENSOR_FLAG_TIMEOUT_S = 90.0

EXAMPLE_QUERIES = [
    (
        "Generators and drinking water across the district (as the emergency office)",
        '{ resources(where: {kinds: ["portable_generator", "drinking_water"]}) '
        "{ edges { node { id owner name available availableBand { label } unit } } } }",
    ),
    (
        "Open shelters within 2 km of 永安里 (Yong'anli)",
        "{ shelters(where: {statuses: [OPEN], near: {lat: 39.9087, lon: 116.4446, radiusKm: 2}}) "
        "{ edges { node { owner name capacity occupancy accessible } } } }",
    ),
    (
        "Active public alerts (CAP adapter), and which sources answered",
        "{ alerts(where: {activeOnly: true}) { edges { node { identifier sender sent "
        "infos { event headline areas { areaDesc } } } } } sources { id name status } }",
    ),
]


RESTART_DELAY_S = 2.0
HUB_MAX_EXITS = 3  # the hub exiting this often within HUB_EXIT_WINDOW_S stops the demo
HUB_EXIT_WINDOW_S = 300.0


def _python(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hub.cli", *args], env=env)  # noqa: S603


@dataclass
class _Service:
    """One server of the demo, as a child process the demo restarts when it exits."""

    name: str  # "hub", "node 110105001002", "adapter-cap"
    url: str
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    restart_at: float | None = None  # when an exited service is due to start again
    exits: list[float] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, url: str, args: list[str], env: dict[str, str]) -> _Service:
        return cls(name, url, args, env, _python(args, env))

    def restart(self) -> None:
        self.process = _python(self.args, self.env)
        self.restart_at = None


class HubKeepsExiting(Exception):
    """The hub exited too often in a short time: restarting it again would not help."""


def _supervise(services: list[_Service]) -> None:
    """Restart every service that exits, after a short delay, until Ctrl-C or SIGTERM."""
    while True:
        now = time.monotonic()
        for service in services:
            code = service.process.poll()
            if service.restart_at is None and code is not None:
                service.exits = [t for t in service.exits if now - t < HUB_EXIT_WINDOW_S] + [now]
                if service.name == "hub" and len(service.exits) >= HUB_MAX_EXITS:
                    raise HubKeepsExiting(
                        f"the hub exited {len(service.exits)} times within "
                        f"{HUB_EXIT_WINDOW_S:.0f} s (last code {code})"
                    )
                console.print(
                    f"[yellow]{service.name} exited (code {code}); "
                    f"restarting in {RESTART_DELAY_S:.0f} s[/]"
                )
                service.restart_at = now + RESTART_DELAY_S
            elif service.restart_at is not None and now >= service.restart_at:
                service.restart()
                console.print(f"{service.name} restarted (pid {service.process.pid})")
        time.sleep(0.2)


def _base_env() -> dict[str, str]:
    return {**os.environ, "LINLI_LOG_JSON": "false", "LINLI_LOG_LEVEL": "WARNING"}


def _wait_ready(service: _Service, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with code {service.process.returncode}")
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} at {service.url} was not ready within {timeout:.0f} s")


def _wait_sources_ok(hub_url: str, token: str, sources: list[str], timeout: float = 60.0) -> None:
    """Wait until the hub has described every source and finds it ``ok``."""
    deadline = time.monotonic() + timeout
    status: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            data = _graphql(hub_url, token, "{ sources { id status } }")
            status = {s["id"]: s["status"] for s in data["sources"]}
        except (httpx.HTTPError, ValueError, RuntimeError) as exc:
            status = {"hub": f"{type(exc).__name__}: {exc}"}
        if all(status.get(source) == "ok" for source in sources):
            return
        time.sleep(0.3)
    waiting = ", ".join(f"{s}: {status.get(s, 'not registered')}" for s in sources)
    raise RuntimeError(f"the hub did not find every source ok within {timeout:.0f} s ({waiting})")


def _wait_flags_at_hub(
    hub_url: str, token: str, flag_ids: list[str], timeout: float = 30.0
) -> list[str]:
    """Wait until the department sees ``flag_ids`` at the hub; the ids it still does not see."""
    deadline = time.monotonic() + timeout
    missing = list(flag_ids)
    while missing and time.monotonic() < deadline:
        still = []
        for flag_id in missing:
            try:
                _graphql(
                    hub_url, token, "query($id: ID!) { flag(id: $id) { id } }", {"id": flag_id}
                )
            except (httpx.HTTPError, ValueError, RuntimeError):
                still.append(flag_id)
        missing = still
        if missing:
            time.sleep(0.3)
    return missing


async def _ensure_clients(database_url: str, known: dict[str, str]) -> dict[str, str]:
    """Create the demo's OAuth clients that do not exist yet; {client_id: secret}."""
    from hub.auth.service import create_client, get_client
    from schema.enums import OrgKind
    from schema.runtime.db import Database

    secrets_by_id = dict(known)
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            for spec in DEMO_CLIENTS:
                if spec["client_id"] in secrets_by_id and await get_client(
                    session, spec["client_id"]
                ):
                    continue
                _, secret = await create_client(
                    session,
                    org=spec["org"],
                    org_kind=OrgKind(spec["org_kind"]),
                    district=DISTRICT,
                    scopes=spec["scopes"],
                    client_id=spec["client_id"],
                )
                secrets_by_id[spec["client_id"]] = secret
    finally:
        await db.dispose()
    return secrets_by_id


def _token(hub_url: str, client_id: str, secret: str, resource: str | None = None) -> str:
    form = {"grant_type": "client_credentials"}
    if resource:
        form["resource"] = resource
    response = httpx.post(f"{hub_url}/oauth/token", data=form, auth=(client_id, secret), timeout=10)
    if response.status_code != 200:
        raise RuntimeError(f"token for {client_id}: {response.status_code} {response.text[:200]}")
    token: str = response.json()["access_token"]
    return token


def _graphql(url: str, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"{url}: {body['errors'][0]['message']}")
    return body["data"]


_CREATE = {
    "resources": ("createResource", "ResourceCreateInput"),
    "shelters": ("createShelter", "ShelterCreateInput"),
    "incidents": ("createIncident", "IncidentCreateInput"),
    "volunteers": ("createVolunteer", "VolunteerCreateInput"),
    "flags": ("raiseRiskFlag", "RiskFlagCreateInput"),
}


def _accepted(url: str, token: str, timeout: float = 30.0) -> Any:
    """The node's first answer to ``token``: a node that has just started may not have read
    the hub's keys yet (it asks again shortly), so a refusal is retried until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _graphql(url, token, "{ resources(first: 1) { edges { cursor } } }")
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _seed(url: str, token: str, community: DemoCommunity) -> tuple[int, list[str]]:
    """Create the community's demo records unless it has some; (records created, flag ids)."""
    existing = _accepted(url, token)
    if existing["resources"]["edges"]:
        return 0, []
    count, flag_ids = 0, []
    for collection, (mutation, input_type) in _CREATE.items():
        for record in getattr(community, collection):
            created = _graphql(
                url,
                token,
                f"mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ id }} }}",
                {"input": record},
            )
            count += 1
            if collection == "flags":
                flag_ids.append(created[mutation]["id"])
    return count, flag_ids


_SENSORS: list[dict[str, Any]] = [
    {
        "name": "地下车库B2层水位 Car park B2 water level",
        "kind": "WATER_LEVEL",
        "code": "carpark-b2-level",
        "unit": "m",
        "observed": "建国里3号楼地下车库B2层 Underground car park B2, block 3",
        "category": "flooding",
        "location": {"type": "Point", "coordinates": [116.4399, 39.9061]},
        "address": "建国里3号楼地下车库",
        "device": SENSOR_DEVICE,
        "rules": [
            {
                "id": "high-water",
                "kind": "ABOVE",
                "level": 0.30,
                "clear": 0.15,
                "durationS": 10,
                "severity": "II",
            }
        ],
    },
    {
        "name": "雨量计 Rain gauge (roof of block 3)",
        "kind": "RAINFALL",
        "code": "rain-gauge-01",
        "unit": "mm/h",
        "observed": "建国里3号楼楼顶 Roof of block 3",
        "category": "flooding",
        "location": {"type": "Point", "coordinates": [116.4398, 39.9062]},
        "address": "建国里3号楼",
        "device": SENSOR_DEVICE,
        "rules": [],
    },
]
SENSOR_FLAGS = (
    "query { flags(first: 100) { edges { node { id community category severity assignedTo "
    "source { sensor rule unit level } evidence { t v } } } } }"
)


def _sensor_flag_ids(hub_url: str, token: str) -> set[str]:
    """The ids of the sensor-raised flags the department sees now."""
    try:
        data = _graphql(hub_url, token, SENSOR_FLAGS)
    except (httpx.HTTPError, ValueError, RuntimeError):
        return set()
    return {e["node"]["id"] for e in data["flags"]["edges"] if e["node"]["source"]}


@dataclass
class _Storm:
    """The sensor simulator running the rain scenario, and the flags seen before it began."""

    process: subprocess.Popen[bytes]
    started: float
    known: set[str]

    def wait_for_flag(self, hub_url: str, token: str) -> dict[str, Any] | None:
        """The first new sensor-raised flag the department sees, or None after the timeout."""
        deadline = self.started + SENSOR_FLAG_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                data = _graphql(hub_url, token, SENSOR_FLAGS)
            except (httpx.HTTPError, ValueError, RuntimeError):
                data = {"flags": {"edges": []}}
            for edge in data["flags"]["edges"]:
                flag = edge["node"]
                if flag["source"] and flag["id"] not in self.known:
                    return dict(flag)
            time.sleep(0.5)
        return None


def _start_storm(node_url: str, staff: str, device: str, log: Path, known: set[str]) -> _Storm:
    """Register the car park's sensors (once) and start ``linli sensors simulate`` over HTTP."""
    have = _graphql(node_url, staff, "{ sensors(first: 50) { edges { node { code } } } }")
    codes = {e["node"]["code"] for e in have["sensors"]["edges"]}
    for sensor in _SENSORS:
        if sensor["code"] not in codes:
            _graphql(
                node_url,
                staff,
                "mutation($input: SensorCreateInput!) { createSensor(input: $input) { id } }",
                {"input": sensor},
            )
    args = [
        "sensors", "simulate", "--transport", "http", "--node-url", node_url,
        "--speed", str(SIMULATOR_SPEED), "--interval", "1",
    ]  # fmt: skip
    env = {**_base_env(), "LINLI_DEVICE_TOKEN": device}
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "hub.cli", *args], env=env, stdout=out, stderr=out
        )
    return _Storm(process, time.monotonic(), known)


def _print_sensor_flag(flag: dict[str, Any] | None, started: float) -> None:
    if flag is None:
        console.print(
            f"[yellow]  no sensor-raised flag reached the emergency office within "
            f"{SENSOR_FLAG_TIMEOUT_S:.0f} s (see the simulator's log)[/]"
        )
        return
    values = [reading["v"] for reading in flag["evidence"]]
    evidence = (
        f"{len(values)} readings, {min(values):g}–{max(values):g} {flag['source']['unit']}"
        if values
        else "no readings"
    )
    console.print(
        f"  [bold]Sensor-raised flag reached the emergency office[/] "
        f"{time.monotonic() - started:.0f} s after the storm began: {flag['id']} "
        f"({flag['category']}, severity {flag['severity']}, rule {flag['source']['rule']} "
        f"≥ {flag['source']['level']:g} {flag['source']['unit']}; evidence {evidence}), "
        f"assigned to {flag['assignedTo']}",
        soft_wrap=True,
    )


_ENUM_FIELDS = frozenset({"estimatedSeverity"})


def _graphql_literal(value: Any) -> str:
    """``value`` as a GraphQL input literal (the values of ``_ENUM_FIELDS`` bare)."""
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{k}: {v if k in _ENUM_FIELDS else _graphql_literal(v)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_graphql_literal(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


RAISE_FLAG = (
    f"mutation {{ raiseRiskFlag(input: {_graphql_literal(EXAMPLE_FLAG)}) "
    "{ id status assignedTo } }"
)
LIST_FLAGS = (
    "query { flags(status: ROUTED) { edges { node { id community category description "
    "status version deadlineAt } } } }"
)
TRANSITION_FLAG = (
    'mutation { transitionFlag(id: "<id>", to: ACKNOWLEDGED, expectedVersion: <version>, '
    'note: "on our way") { status version } }'
)
AID_CASES = (
    "query { aidCases(statuses: [REQUESTED]) { items { requestId requester resourceKind "
    "requested resourceId status } } }"
)
OFFER_AID = (
    'mutation { aidStep(requestId: "<requestId>", kind: OFFER, quantity: 1, '
    'resourceId: "<resourceId>") { status offered } }'
)
FLAG_AT_NODE = (
    "query { riskFlags { edges { node { id status assignedTo "
    "transitions { status at by note } } } } }"
)


def demo(
    port: Annotated[
        int, typer.Option(help="The hub's port; the community nodes take the ports after it")
    ] = 8000,
    data_dir: Annotated[
        Path, typer.Option(help="Where the demo keeps its SQLite files and demo.json")
    ] = Path(".linli/demo"),
) -> None:
    """Run a district on this machine: a hub, three community nodes and a CAP adapter."""
    data = data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    state_path = data / "demo.json"
    state: dict[str, Any] = (
        json.loads(state_path.read_text("utf-8")) if state_path.is_file() else {}
    )
    hub_url = f"http://127.0.0.1:{port}"
    hub_db = f"sqlite+aiosqlite:///{data / 'hub.db'}"
    services: list[_Service] = []
    extras: list[subprocess.Popen[bytes]] = []  # not restarted: the sensor simulator

    def stop() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut this short
        processes = [service.process for service in services] + extras
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def on_sigterm(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops start-up and supervision as Ctrl-C does: exit 0

    signal.signal(signal.SIGTERM, on_sigterm)
    step: Callable[[str], None] = lambda text: console.print(f"[bold cyan]›[/] {text}")  # noqa: E731
    try:
        step("preparing the hub database and the demo's OAuth clients …")
        from hub.app import MIGRATIONS
        from schema.runtime.db import upgrade

        asyncio.run(upgrade(MIGRATIONS, hub_db))
        secrets_by_id = asyncio.run(_ensure_clients(hub_db, state.get("secrets", {})))
        passwords = asyncio.run(ensure_people(hub_db, state.get("passwords", {})))

        nodes = [(c, port + i) for i, c in enumerate(COMMUNITIES, start=1)]
        adapter_url = f"http://127.0.0.1:{port + len(nodes) + 1}"
        sources = {c.code: f"http://127.0.0.1:{p}" for c, p in nodes} | {
            CAP_ADAPTER_ID: adapter_url
        }
        sources_file = data / "sources.toml"
        sources_file.write_text(
            "".join(f'[[sources]]\nid = "{i}"\nurl = "{u}"\n\n' for i, u in sources.items()),
            "utf-8",
        )
        env = _base_env()
        step(f"starting the hub on {hub_url} …")
        # The hub's settings go to a file, so `linli token -c <data>/hub.toml` mints tokens
        # with this hub's database, keys and issuer.
        hub_settings: dict[str, str | int] = {
            "port": port,
            "database_url": hub_db,
            "issuer": hub_url,
            "hub_id": HUB_ID,
            "district": DISTRICT,
            "sources_file": str(sources_file),
            "cursor_secret": state.get("cursor_secret") or os.urandom(24).hex(),
            # signing keys and webhook secrets are stored encrypted, as in production
            "secrets_key": state.get("secrets_key") or Fernet.generate_key().decode("ascii"),
            # Every flag goes to the emergency office, which keeps the district's duty desk
            # (no routing file: the duty desk is the default route and the last escalation).
            "duty_desk": EMERGENCY_OFFICE,
            "access_token_ttl_s": TOKEN_TTL_S,
            "health_interval_s": 2,  # a restarted node is back in the hub's view soon
        }
        hub_config = data / "hub.toml"
        hub_config.write_text(_toml(hub_settings), "utf-8")
        hub_config.chmod(0o600)  # it holds the cursor secret and the secrets key
        # (the environment would override the file: leave out what the file sets)
        hub_env = {
            k: v for k, v in env.items() if k.removeprefix("LINLI_").lower() not in hub_settings
        }
        hub_command = ["hub", "serve", "--config", str(hub_config)]
        services.append(_Service.start("hub", hub_url, hub_command, hub_env))
        for community, node_port in nodes:
            url = f"http://127.0.0.1:{node_port}"
            delivery_client = f"node-{community.code}"
            node_env = {
                **env,
                "LINLI_PORT": str(node_port),
                "LINLI_DATABASE_URL": f"sqlite+aiosqlite:///{data / (community.code + '.db')}",
                "LINLI_ORG_CODE": community.code,
                "LINLI_ORG_NAME": community.name,
                "LINLI_DISTRICT": DISTRICT,
                "LINLI_NEIGHBOURS": json.dumps(list(community.neighbours)),
                # The area the web application's map draws for the community.
                "LINLI_BBOX": json.dumps(_demo_bbox(community)),
                "LINLI_TOKEN_ISSUER": hub_url,
                "LINLI_JWKS_URL": f"{hub_url}/.well-known/jwks.json",
                # Raised flags go to the hub's inbox with the node's own client.
                "LINLI_HUB_URL": hub_url,
                "LINLI_HUB_CLIENT_ID": delivery_client,
                "LINLI_HUB_CLIENT_SECRET": secrets_by_id[delivery_client],
            }
            node = _Service.start(f"node {community.code}", url, ["node", "serve"], node_env)
            services.append(node)
            pid = node.process.pid
            step(f"starting node {community.code} {community.name} on {url} (pid {pid}) …")
        step(f"starting the CAP adapter on {adapter_url} (sample alerts) …")
        adapter_env = {
            **env,
            "LINLI_PORT": adapter_url.rsplit(":", 1)[1],
            "LINLI_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'adapter-cap.db'}",
            "LINLI_ADAPTER_ID": CAP_ADAPTER_ID,
            "LINLI_PUBLIC_URL": adapter_url,
            "LINLI_ORG_CODE": "110105400003",
            "LINLI_DISTRICT": DISTRICT,
            "LINLI_TOKEN_ISSUER": hub_url,
            "LINLI_JWKS_URL": f"{hub_url}/.well-known/jwks.json",
            "LINLI_ADAPTER_CAP_SOURCES": json.dumps(
                [str(current_cap_samples(data / "cap-samples", datetime.now(UTC)))]
            ),
        }
        services.append(
            _Service.start(CAP_ADAPTER_ID, adapter_url, ["adapter", "serve", "cap"], adapter_env)
        )
        for service in services:
            _wait_ready(service)
        office = _token(hub_url, "emergency-office", secrets_by_id["emergency-office"])
        step("waiting until the hub has described every source …")
        _wait_sources_ok(hub_url, office, list(sources))
        staff_tokens: dict[str, str] = {}
        seeded_flags: list[str] = []
        fresh = False  # records were seeded just now (not a restart over the demo's data)
        for community, node_port in nodes:
            client_id = f"staff-{community.code}"
            token = _token(hub_url, client_id, secrets_by_id[client_id], resource=community.code)
            staff_tokens[community.code] = token
            seeded, flag_ids = _seed(f"http://127.0.0.1:{node_port}", token, community)
            seeded_flags += flag_ids
            fresh = fresh or seeded > 0
            console.print(
                f"  {community.name}: ready" + (f", seeded {seeded} records" if seeded else "")
            )
        aid_request = None
        if fresh:  # a fresh demo: one open aid request as well
            aid_request = _seed_aid_request(nodes, staff_tokens)
            console.print(f"  seeded the open aid request {aid_request}")
        if seeded_flags:
            missing = _wait_flags_at_hub(hub_url, office, seeded_flags)
            arrived = len(seeded_flags) - len(missing)
            console.print(
                f"  {arrived} of {len(seeded_flags)} seeded risk flags reached the emergency office"
                + (f"; still in the nodes' outboxes: {', '.join(missing)}" if missing else "")
            )
        sensor_node = dict((c.code, p) for c, p in nodes)[EXAMPLE_FLAG_COMMUNITY]
        simulator = _start_storm(
            f"http://127.0.0.1:{sensor_node}",
            staff_tokens[EXAMPLE_FLAG_COMMUNITY],
            _token(
                hub_url,
                SENSOR_DEVICE,
                secrets_by_id[SENSOR_DEVICE],
                resource=EXAMPLE_FLAG_COMMUNITY,
            ),
            data / "simulator.log",
            _sensor_flag_ids(hub_url, office),
        )
        extras.append(simulator.process)
        step(
            "simulating a rainstorm over the underground car park of "
            f"{EXAMPLE_FLAG_COMMUNITY} (linli sensors simulate, {SIMULATOR_SPEED:g}x, "
            f"log: {data / 'simulator.log'}) …"
        )
        _print_sensor_flag(simulator.wait_for_flag(hub_url, office), simulator.started)
        expires_at = (datetime.now(UTC) + timedelta(seconds=TOKEN_TTL_S)).isoformat()
        clients = {spec["client_id"]: spec for spec in DEMO_CLIENTS}
        state = {
            "district": DISTRICT,
            "hub": {"id": HUB_ID, "url": hub_url, "graphql": f"{hub_url}/graphql"},
            "nodes": [
                {"org": c.code, "name": c.name, "url": f"http://127.0.0.1:{p}"} for c, p in nodes
            ],
            "adapters": [{"id": CAP_ADAPTER_ID, "kind": "cap", "url": adapter_url}],
            "duty_desk": EMERGENCY_OFFICE,
            "aid_request": aid_request,
            "roles": {
                # Raise flags at the community's own node, with a token for that node.
                "community_staff": [
                    {
                        "org": c.code,
                        "name": c.name,
                        "client_id": f"staff-{c.code}",
                        "secret": secrets_by_id[f"staff-{c.code}"],
                        "graphql": f"http://127.0.0.1:{p}/graphql",
                        "audience": c.code,
                        "token": staff_tokens[c.code],
                        "expires_at": expires_at,
                    }
                    for c, p in nodes
                ],
                # Move the flags routed to it at the hub, with a token for the hub.
                "department": {
                    "org": EMERGENCY_OFFICE,
                    "name": clients["emergency-office"]["label"],
                    "client_id": "emergency-office",
                    "secret": secrets_by_id["emergency-office"],
                    "graphql": f"{hub_url}/graphql",
                    "audience": None,
                    "token": office,
                    "expires_at": expires_at,
                },
            },
            "clients": [
                {
                    **{k: v for k, v in spec.items() if k != "scopes"},
                    "scopes": spec["scopes"].split(),
                    "secret": secrets_by_id[spec["client_id"]],
                }
                for spec in DEMO_CLIENTS
            ],
            "secrets": secrets_by_id,
            # People sign in at the web app (one account per role; passwords kept here).
            "sign_in": f"{hub_url}/app/",
            "people": [
                {
                    "username": p.username,
                    "name": p.name,
                    "org": p.org,
                    "role": p.role.value,
                    "password": passwords[p.username],
                }
                for p in DEMO_PEOPLE
            ],
            "passwords": passwords,
            "cursor_secret": hub_settings["cursor_secret"],
            "secrets_key": hub_settings["secrets_key"],
            "hub_config": str(hub_config),
        }
        state_path.write_text(json.dumps(state, ensure_ascii=False, indent=2), "utf-8")
        state_path.chmod(0o600)  # it holds client secrets
        _print_ready(state, state_path, nodes)
        _supervise(services)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, HubKeepsExiting) as exc:  # a service did not start, or the hub dies
        console.print(f"[red]{exc}; stopping the demo[/]")
        raise typer.Exit(1) from None
    finally:
        console.print("stopping …")
        stop()


_CAP_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")


def _demo_bbox(community: DemoCommunity) -> dict[str, float]:
    """A box around the community's centre: its area on the web application's map."""
    return {
        "west": round(community.lon - 0.0045, 6),
        "south": round(community.lat - 0.0035, 6),
        "east": round(community.lon + 0.0045, 6),
        "north": round(community.lat + 0.0035, 6),
    }


def current_cap_samples(folder: Path, now: datetime) -> Path:
    """The CAP samples with every time moved by one offset, so the newest was sent just now.

    The samples are the CAP 1.2 specification's examples of 2003; moved as a whole (``sent``,
    ``effective``, ``onset``, ``expires`` and the times inside ``references``), each keeps its
    own span, so an alert with an ``expires`` is active for the demo's first hour or so.
    """
    samples = sorted(CAP_SAMPLES.glob("*.xml"))
    texts = {path.name: path.read_text("utf-8") for path in samples}
    sent = re.compile(rf"<sent>({_CAP_TIME.pattern})</sent>")
    newest = max(datetime.fromisoformat(m) for text in texts.values() for m in sent.findall(text))
    offset = now - timedelta(minutes=5) - newest

    def moved(match: re.Match[str]) -> str:
        return (datetime.fromisoformat(match.group(0)) + offset).isoformat(timespec="seconds")

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(_CAP_TIME.sub(moved, text), "utf-8")
    return folder


def _toml(values: dict[str, str | int]) -> str:
    """A flat TOML table (JSON's string escapes are valid TOML basic strings)."""
    return "".join(
        f"{key} = {json.dumps(value, ensure_ascii=False)}\n" for key, value in values.items()
    )


def _seed_aid_request(nodes: list[tuple[DemoCommunity, int]], tokens: dict[str, str]) -> str:
    """The requester's request for one of the provider's generators; its id."""
    urls = {c.code: f"http://127.0.0.1:{port}" for c, port in nodes}
    found = _graphql(
        urls[AID_PROVIDER],
        tokens[AID_PROVIDER],
        '{ resources(where: {kinds: ["portable_generator"]}) { edges { node { id } } } }',
    )
    resource_id = found["resources"]["edges"][0]["node"]["id"]
    created = _graphql(
        urls[AID_REQUESTER],
        tokens[AID_REQUESTER],
        "mutation($input: AidRequestCreateInput!) { createAidRequest(input: $input) { id } }",
        {"input": {**EXAMPLE_AID_REQUEST, "resourceId": resource_id}},
    )
    request_id: str = created["createAidRequest"]["id"]
    return request_id


def _print_ready(
    state: dict[str, Any], state_path: Path, nodes: list[tuple[DemoCommunity, int]]
) -> None:
    hub_url = state["hub"]["url"]
    office = state["roles"]["department"]
    staff = next(s for s in state["roles"]["community_staff"] if s["org"] == EXAMPLE_FLAG_COMMUNITY)
    console.print(
        f"\n[green]Linli demo is ready.[/] Clients, secrets, tokens and URLs: {state_path}"
    )
    # The token rides in the URL fragment, which the browser keeps to itself: the page
    # puts it in GraphiQL's headers editor.
    console.print(
        f"GraphiQL, as the district emergency office: {hub_url}/graphql#token={office['token']}",
        soft_wrap=True,
    )
    console.print(
        "Header for the district emergency office (valid 1 hour; for a new one:"
        f" linli token -c {state['hub_config']} --client-id {office['client_id']}"
        " --client-secret <its secret in demo.json>):",
        soft_wrap=True,
    )
    console.print(f'  {{"Authorization": "Bearer {office["token"]}"}}', soft_wrap=True)
    for title, query in EXAMPLE_QUERIES:
        console.print(f"\n[bold]{title}[/]\n  {query}", soft_wrap=True)
    console.print(
        f"\n[bold]Raise a risk flag as community staff of {staff['name']}[/] "
        f"at its node {staff['graphql']} (token audience {staff['audience']}), with the header"
        f'\n    {{"Authorization": "Bearer {staff["token"]}"}}'
        f"\n    {escape(RAISE_FLAG)}",
        soft_wrap=True,
    )
    console.print(
        f"\n[bold]Move it as the district emergency office ({office['org']})[/] "
        f"at the hub {office['graphql']}, with the office's header above"
        f"\n    {LIST_FLAGS}"
        f"\n    {TRANSITION_FLAG}"
        "\n  then to: VERIFYING, then CONFIRMED or DISMISSED, then RESOLVED, each time with"
        " expectedVersion = the version the last step returned",
        soft_wrap=True,
    )
    console.print(
        f"\n[bold]See every step come back at the node[/] {staff['graphql']} (staff header)"
        f"\n    {FLAG_AT_NODE}",
        soft_wrap=True,
    )
    provider = next(s for s in state["roles"]["community_staff"] if s["org"] == AID_PROVIDER)
    console.print(
        f"\n[bold]Answer the open aid request[/] {state.get('aid_request') or ''} as staff of "
        f"{provider['name']} at its node {provider['graphql']}, with the header"
        f'\n    {{"Authorization": "Bearer {provider["token"]}"}}'
        f"\n    {AID_CASES}"
        f"\n    {escape(OFFER_AID)}"
        "\n  then the requester accepts at its own node (aidStep kind: ACCEPT), the offer is "
        "committed, and the requester's aidCase shows the pick-up address",
        soft_wrap=True,
    )
    console.print(
        f"\n[bold]Sign in as a person[/] at {state['sign_in']} (one account per role):",
        soft_wrap=True,
    )
    for person in state["people"]:
        console.print(
            f"  {person['username']:<12} {person['password']:<14} {person['role']:<16}"
            f" {person['org']}  {person['name']}",
            soft_wrap=True,
            highlight=False,
        )
    console.print(
        "\nA node that stops is restarted after "
        f"{RESTART_DELAY_S:.0f} s (try `kill -9` on a node's pid). Press Ctrl-C to stop."
    )
