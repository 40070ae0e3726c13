"""`linli demo`: a whole district on this machine: hub, three community nodes, seeded data."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from hub.demo.seed import COMMUNITIES, DISTRICT, DemoCommunity
from schema.scopes import Scope

__all__ = ["demo"]

console = Console()

HUB_ID = "hub-110105"
CAP_ADAPTER_ID = "adapter-cap"
CAP_SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "cap" / "samples"


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
)
DEMO_CLIENTS: list[dict[str, str]] = [
    {
        "client_id": "emergency-office",
        "org": "110105400001",
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
] + [
    {
        "client_id": f"staff-{c.code}",
        "org": c.code,
        "org_kind": "community",
        "label": c.name,
        "scopes": COMMUNITY_SCOPES,
    }
    for c in COMMUNITIES
]

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


@dataclass
class _Service:
    name: str
    url: str
    process: subprocess.Popen[bytes]


def _python(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hub.cli", *args], env=env)  # noqa: S603


def _base_env() -> dict[str, str]:
    return {**os.environ, "LINLI_LOG_JSON": "false", "LINLI_LOG_LEVEL": "WARNING"}


def _wait_ready(service: _Service, timeout: float = 60.0) -> None:
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


def _seed(url: str, token: str, community: DemoCommunity) -> int:
    existing = _graphql(url, token, "{ resources(first: 1) { edges { cursor } } }")
    if existing["resources"]["edges"]:
        return 0
    count = 0
    for collection, (mutation, input_type) in _CREATE.items():
        for record in getattr(community, collection):
            _graphql(
                url,
                token,
                f"mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ id }} }}",
                {"input": record},
            )
            count += 1
    return count


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
    stop_requested: list[bool] = []

    def stop(*_: object) -> None:
        for service in services:
            if service.process.poll() is None:
                service.process.terminate()
        for service in services:
            try:
                service.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                service.process.kill()

    step: Callable[[str], None] = lambda text: console.print(f"[bold cyan]›[/] {text}")  # noqa: E731
    try:
        step("preparing the hub database and the demo's OAuth clients …")
        from hub.app import MIGRATIONS
        from schema.runtime.db import upgrade

        asyncio.run(upgrade(MIGRATIONS, hub_db))
        secrets_by_id = asyncio.run(_ensure_clients(hub_db, state.get("secrets", {})))

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
        hub_env = {
            **env,
            "LINLI_PORT": str(port),
            "LINLI_DATABASE_URL": hub_db,
            "LINLI_ISSUER": hub_url,
            "LINLI_HUB_ID": HUB_ID,
            "LINLI_DISTRICT": DISTRICT,
            "LINLI_SOURCES_FILE": str(sources_file),
            "LINLI_CURSOR_SECRET": state.get("cursor_secret") or os.urandom(24).hex(),
        }
        services.append(_Service("hub", hub_url, _python(["hub", "serve"], hub_env)))
        for community, node_port in nodes:
            url = f"http://127.0.0.1:{node_port}"
            step(f"starting node {community.name} on {url} …")
            node_env = {
                **env,
                "LINLI_PORT": str(node_port),
                "LINLI_DATABASE_URL": f"sqlite+aiosqlite:///{data / (community.code + '.db')}",
                "LINLI_ORG_CODE": community.code,
                "LINLI_ORG_NAME": community.name,
                "LINLI_DISTRICT": DISTRICT,
                "LINLI_NEIGHBOURS": json.dumps(list(community.neighbours)),
                "LINLI_TOKEN_ISSUER": hub_url,
                "LINLI_JWKS_URL": f"{hub_url}/.well-known/jwks.json",
            }
            services.append(_Service(community.code, url, _python(["node", "serve"], node_env)))
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
            "LINLI_ADAPTER_CAP_SOURCES": json.dumps([str(CAP_SAMPLES)]),
        }
        services.append(
            _Service(CAP_ADAPTER_ID, adapter_url, _python(["adapter", "serve", "cap"], adapter_env))
        )
        for service in services:
            _wait_ready(service)
        for community, node_port in nodes:
            client_id = f"staff-{community.code}"
            token = _token(hub_url, client_id, secrets_by_id[client_id], resource=community.code)
            seeded = _seed(f"http://127.0.0.1:{node_port}", token, community)
            console.print(
                f"  {community.name}: ready" + (f", seeded {seeded} records" if seeded else "")
            )
        office = _token(hub_url, "emergency-office", secrets_by_id["emergency-office"])
        state = {
            "district": DISTRICT,
            "hub": {"id": HUB_ID, "url": hub_url, "graphql": f"{hub_url}/graphql"},
            "nodes": [
                {"org": c.code, "name": c.name, "url": f"http://127.0.0.1:{p}"} for c, p in nodes
            ],
            "adapters": [{"id": CAP_ADAPTER_ID, "kind": "cap", "url": adapter_url}],
            "clients": [
                {
                    **{k: v for k, v in spec.items() if k != "scopes"},
                    "scopes": spec["scopes"].split(),
                    "secret": secrets_by_id[spec["client_id"]],
                }
                for spec in DEMO_CLIENTS
            ],
            "secrets": secrets_by_id,
            "cursor_secret": hub_env["LINLI_CURSOR_SECRET"],
        }
        state_path.write_text(json.dumps(state, ensure_ascii=False, indent=2), "utf-8")
        state_path.chmod(0o600)  # it holds client secrets
        console.print(f"\n[green]Linli demo is running.[/] Clients, secrets and URLs: {state_path}")
        console.print(f"GraphiQL: {hub_url}/graphql")
        console.print(
            "Header for the district emergency office (valid 5 minutes; `linli token` for more):"
        )
        console.print(f'  {{"Authorization": "Bearer {office}"}}', soft_wrap=True)
        for title, query in EXAMPLE_QUERIES:
            console.print(f"\n[bold]{title}[/]\n  {query}", soft_wrap=True)
        console.print("\nPress Ctrl-C to stop.")
        signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
        while not stop_requested and all(s.process.poll() is None for s in services):
            time.sleep(0.5)
        if not stop_requested:
            console.print("[red]a service exited; stopping the demo[/]")
            raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping …")
        stop()
