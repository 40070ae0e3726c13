"""`linli demo`: start a district's services on this machine and seed them with data."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from hub.demo.seed import COMMUNITIES, DISTRICT, DemoCommunity

__all__ = ["demo"]

console = Console()

STAFF_SCOPES = [
    "records:write", "incidents:read", "resources:read", "shelters:read",
    "volunteers:read", "pii:read", "risk:flag", "alerts:read",
]  # fmt: skip

EXAMPLE_QUERIES = [
    (
        "Generators and water at 永安里 (Yong'anli)",
        '{ resources(where: {kinds: ["portable_generator", "drinking_water"]}) '
        "{ edges { node { id name kind available unit address } } } }",
    ),
    (
        "Open shelters within 2 km",
        "{ shelters(where: {statuses: [OPEN], near: {lat: 39.9087, lon: 116.4446, radiusKm: 2}}) "
        "{ edges { node { name capacity occupancy accessible } } } }",
    ),
    (
        "Search in Chinese: 积水 (flooding)",
        '{ incidents(where: {text: "积水"}) { edges { node { title status affectedPeople } } } }',
    ),
]


def _load_state(path: Path) -> dict[str, Any]:
    if path.is_file():
        loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return loaded
    return {}


def _node_env(community: DemoCommunity, port: int, data: Path, token: str) -> dict[str, str]:
    return {
        **os.environ,
        "LINLI_PORT": str(port),
        "LINLI_HOST": "127.0.0.1",
        "LINLI_DATABASE_URL": f"sqlite+aiosqlite:///{data / (community.code + '.db')}",
        "LINLI_ORG_CODE": community.code,
        "LINLI_ORG_NAME": community.name,
        "LINLI_DISTRICT": DISTRICT,
        "LINLI_NEIGHBOURS": json.dumps(list(community.neighbours)),
        "LINLI_TRUSTED_CALLERS": json.dumps(
            [{"token": token, "org": community.code, "scopes": STAFF_SCOPES,
              "client_id": f"staff-{community.code}"}]
        ),
        "LINLI_LOG_JSON": "false",
        "LINLI_LOG_LEVEL": "WARNING",
    }  # fmt: skip


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service for {url} exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready within {timeout:.0f} s")


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
    "resources": "createResource(input: $input) { id }",
    "shelters": "createShelter(input: $input) { id }",
    "incidents": "createIncident(input: $input) { id }",
    "volunteers": "createVolunteer(input: $input) { id }",
    "flags": "raiseRiskFlag(input: $input) { id }",
}
_INPUT = {
    "resources": "ResourceCreateInput",
    "shelters": "ShelterCreateInput",
    "incidents": "IncidentCreateInput",
    "volunteers": "VolunteerCreateInput",
    "flags": "RiskFlagCreateInput",
}


def _seed(url: str, token: str, community: DemoCommunity) -> int:
    existing = _graphql(url, token, "{ resources(first: 1) { edges { cursor } } }")
    if existing["resources"]["edges"]:
        return 0
    count = 0
    for collection, mutation in _CREATE.items():
        for record in getattr(community, collection):
            _graphql(
                url,
                token,
                f"mutation($input: {_INPUT[collection]}!) {{ {mutation} }}",
                {"input": record},
            )
            count += 1
    return count


def demo(
    port: Annotated[
        int, typer.Option(help="First port; the services take the ports after it")
    ] = 8000,
    data_dir: Annotated[
        Path, typer.Option(help="Where the demo keeps its SQLite files and demo.json")
    ] = Path(".linli/demo"),
) -> None:
    """Run three community nodes of one district on this machine, seeded with demo data."""
    data = data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    state_path = data / "demo.json"
    state = _load_state(state_path)
    tokens: dict[str, str] = state.get("tokens", {})
    processes: list[subprocess.Popen[bytes]] = []
    nodes: list[dict[str, Any]] = []

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    try:
        for index, community in enumerate(COMMUNITIES, start=1):
            node_port = port + index
            token = tokens.setdefault(community.code, secrets.token_urlsafe(32))
            url = f"http://127.0.0.1:{node_port}"
            console.print(f"starting node [bold]{community.name}[/] on {url} …")
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "hub.cli", "node", "serve"],
                    env=_node_env(community, node_port, data, token),
                )
            )
            nodes.append(
                {"org": community.code, "name": community.name, "url": url, "token": token}
            )
        for node, community in zip(nodes, COMMUNITIES, strict=True):
            _wait_ready(node["url"], processes[nodes.index(node)])
            seeded = _seed(node["url"], node["token"], community)
            console.print(
                f"  {community.name}: ready" + (f", seeded {seeded} records" if seeded else "")
            )
        state = {"district": DISTRICT, "nodes": nodes, "tokens": tokens}
        state_path.write_text(json.dumps(state, ensure_ascii=False, indent=2), "utf-8")
        first = nodes[0]
        console.print(f"\n[green]Linli demo is running.[/] Details in {state_path}")
        console.print(
            f"GraphiQL: {first['url']}/graphql  (header Authorization: Bearer {first['token']})"
        )
        for title, query in EXAMPLE_QUERIES:
            console.print(f"\n[bold]{title}[/]\n  {query}")
        console.print("\nPress Ctrl-C to stop.")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        console.print("[red]a service exited; stopping the demo[/]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("\nstopping …")
    finally:
        stop()
