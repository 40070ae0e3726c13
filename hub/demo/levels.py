"""`linli demo-city`: a city hub over two district hubs over two community nodes each.

The city (110100) registers the district hubs (110105, 110106) as sources; each district
trusts the city's issuer for its own audience and federates its two nodes, minting
tokens that name the whole chain of actors. Each community shows its superiors its
resources (identity and status, quantities in bands: ``SUPERIOR_POLICY``); totals of
everything travel up by the baseline.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.fernet import Fernet
from rich.console import Console

from hub.demo.command import (
    HubKeepsExiting,
    _base_env,
    _graphql,
    _Service,
    _supervise,
    _token,
    _wait_ready,
    _wait_sources_ok,
)

__all__ = ["CITY", "DISTRICTS", "SUPERIOR_POLICY", "demo_city", "demo_levels"]

console = Console()

CITY = "110100"
DISTRICTS = {"110105": ["110105001001", "110105001002"], "110106": ["110106001001", "110106001002"]}
CITY_OFFICE = "110100400001"
READ = "incidents:read resources:read shelters:read risk:verify"
STAFF = "records:write resources:read shelters:read incidents:read"
SUPERIOR_POLICY = """// Shown to the city and the province: our resources, quantities in bands.
@id("owner.superior.resources")
permit (principal, action == Linli::Action::"read_exact", resource is Linli::Resource)
when {
  context.relation == "superior" &&
  principal has district &&
  resource.owner has superiors &&
  resource.owner.superiors.contains(principal.district) &&
  ["identity", "status", "description"].contains(resource.group)
};
"""
CITY_QUERIES = [
    (
        "Resources of every community of the city (bands), with each district's and node's status",
        "{ resources(first: 20) { edges { node { owner name availableBand { label } unit } } } }",
    ),
    (
        "Totals by district, kind and status (no record leaves a node)",
        "{ aggregates { totals { recordType area kind status count quantity available"
        " capacity occupancy } } }",
    ),
]


def _hub_id(division: str) -> str:
    return f"hub-{division}"


async def _clients(database_url: str, specs: list[tuple[str, str, str, str]]) -> dict[str, str]:
    """Create OAuth clients (client id, org, kind, scopes) in the hub's database; id: secret."""
    from hub.auth.service import create_client, get_client
    from schema.enums import OrgKind
    from schema.runtime.db import Database

    secrets: dict[str, str] = {}
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            for client_id, org, kind, scopes in specs:
                if await get_client(session, client_id) is not None:
                    continue
                district = org[:6] if kind != "hub" else None
                _, secret = await create_client(
                    session, org=org, org_kind=OrgKind(kind), district=district, scopes=scopes,
                    client_id=client_id,
                )  # fmt: skip
                secrets[client_id] = secret
    finally:
        await db.dispose()
    return secrets


def demo_levels(port: int, data_dir: Path) -> None:
    """Run a city over two districts over two nodes each, on ports from ``port`` on."""
    from hub.app import MIGRATIONS
    from schema.runtime.db import upgrade

    data = data_dir.resolve() / "levels"
    data.mkdir(parents=True, exist_ok=True)
    state_path = data / "demo.json"
    previous: dict[str, Any] = (
        json.loads(state_path.read_text("utf-8")) if state_path.is_file() else {}
    )
    ports = {CITY: port} | {d: port + 1 + i for i, d in enumerate(DISTRICTS)}
    node_ports = {
        code: port + 1 + len(DISTRICTS) + i
        for i, code in enumerate(c for codes in DISTRICTS.values() for c in codes)
    }
    urls = {division: f"http://127.0.0.1:{p}" for division, p in ports.items()}
    services: list[_Service] = []
    step: Callable[[str], None] = lambda text: console.print(f"[bold cyan]›[/] {text}")  # noqa: E731

    def on_sigterm(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    env = _base_env()
    try:
        step("preparing the hub databases and OAuth clients …")
        secrets: dict[str, str] = dict(previous.get("secrets", {}))
        for division in ports:
            database_url = f"sqlite+aiosqlite:///{data / ('hub-' + division + '.db')}"
            asyncio.run(upgrade(MIGRATIONS, database_url))
            if division == CITY:
                specs = [("city-office", CITY_OFFICE, "department", READ)]
            else:
                specs = [(f"district-office-{division}", f"{division}400001", "department", READ)]
                specs += [(f"staff-{c}", c, "community", STAFF) for c in DISTRICTS[division]]
            secrets |= asyncio.run(_clients(database_url, specs))
            below = (
                {_hub_id(d): urls[d] for d in DISTRICTS}
                if division == CITY
                else {c: f"http://127.0.0.1:{node_ports[c]}" for c in DISTRICTS[division]}
            )
            sources_file = data / f"sources-{division}.toml"
            sources_file.write_text(
                "".join(f'[[sources]]\nid = "{i}"\nurl = "{u}"\n\n' for i, u in below.items()),
                "utf-8",
            )
            hub_env = {
                **env,
                "LINLI_PORT": str(ports[division]),
                "LINLI_DATABASE_URL": database_url,
                "LINLI_ISSUER": urls[division],
                "LINLI_HUB_ID": _hub_id(division),
                "LINLI_HUB_NAME": f"{division} hub",
                "LINLI_DISTRICT": division,
                "LINLI_DUTY_DESK": f"{division}400000",
                "LINLI_SOURCES_FILE": str(sources_file),
                "LINLI_HEALTH_INTERVAL_S": "2",
                "LINLI_ACCESS_TOKEN_TTL_S": "3600",
                "LINLI_CURSOR_SECRET": previous.get("cursor_secret") or os.urandom(24).hex(),
                "LINLI_SECRETS_KEY": previous.get("keys", {}).get(division)
                or Fernet.generate_key().decode("ascii"),
            }
            if division != CITY:
                hub_env["LINLI_TRUSTED_ISSUERS"] = json.dumps(
                    [{"issuer": urls[CITY], "jwks_url": f"{urls[CITY]}/.well-known/jwks.json"}]
                )
            previous.setdefault("keys", {})[division] = hub_env["LINLI_SECRETS_KEY"]
            previous["cursor_secret"] = hub_env["LINLI_CURSOR_SECRET"]
            name = "hub" if division == CITY else f"hub {division}"
            step(f"starting {name} ({_hub_id(division)}) on {urls[division]} …")
            services.append(_Service.start(name, urls[division], ["hub", "serve"], hub_env))
        policy = data / "superior-policy.cedar"
        policy.write_text(SUPERIOR_POLICY, "utf-8")
        for district, codes in DISTRICTS.items():
            for code in codes:
                url = f"http://127.0.0.1:{node_ports[code]}"
                node_env = {
                    **env,
                    "LINLI_PORT": str(node_ports[code]),
                    "LINLI_DATABASE_URL": f"sqlite+aiosqlite:///{data / (code + '.db')}",
                    "LINLI_ORG_CODE": code,
                    "LINLI_ORG_NAME": f"社区 {code}",
                    "LINLI_DISTRICT": district,
                    "LINLI_TOKEN_ISSUER": urls[district],
                    "LINLI_JWKS_URL": f"{urls[district]}/.well-known/jwks.json",
                    "LINLI_POLICY_FILE": str(policy),
                }
                step(f"starting node {code} on {url} …")
                services.append(_Service.start(f"node {code}", url, ["node", "serve"], node_env))
        for service in services:
            _wait_ready(service)
        for district, codes in DISTRICTS.items():
            for code in codes:
                token = _token(urls[district], f"staff-{code}", secrets[f"staff-{code}"], code)
                node_url = f"http://127.0.0.1:{node_ports[code]}"
                if _graphql(node_url, token, "{ resources(first: 1) { edges { cursor } } }")[
                    "resources"
                ]["edges"]:
                    continue
                _graphql(
                    node_url,
                    token,
                    "mutation($i: ResourceCreateInput!) { createResource(input: $i) { id } }",
                    {
                        "i": {
                            "kind": "portable_generator", "name": f"发电机 {code[-3:]}",
                            "quantity": 12, "available": 12, "unit": "台",
                        }
                    },
                )  # fmt: skip
        office = _token(urls[CITY], "city-office", secrets["city-office"])
        step("waiting until the city has described both districts …")
        _wait_sources_ok(urls[CITY], office, [_hub_id(d) for d in DISTRICTS])
        state = {
            "city": {"id": _hub_id(CITY), "url": urls[CITY], "graphql": f"{urls[CITY]}/graphql"},
            "districts": [
                {"id": _hub_id(d), "url": urls[d], "nodes": DISTRICTS[d]} for d in DISTRICTS
            ],
            "city_office": {"org": CITY_OFFICE, "client_id": "city-office", "token": office},
            "secrets": secrets,
            "keys": previous["keys"],
            "cursor_secret": previous["cursor_secret"],
        }
        state_path.write_text(json.dumps(state, ensure_ascii=False, indent=2), "utf-8")
        state_path.chmod(0o600)
        console.print(
            f"\n[green]Linli city demo is ready.[/] Tokens and URLs: {state_path}\n"
            f"GraphiQL, as the city emergency office: {urls[CITY]}/graphql#token={office}",
            soft_wrap=True,
        )
        for title, query in CITY_QUERIES:
            console.print(f"\n[bold]{title}[/]\n  {query}", soft_wrap=True)
        console.print("\nPress Ctrl-C to stop.")
        _supervise(services)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, HubKeepsExiting) as exc:
        console.print(f"[red]{exc}; stopping the demo[/]")
        raise SystemExit(1) from None
    finally:
        console.print("stopping …")
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for service in services:
            if service.process.poll() is None:
                service.process.terminate()
        for service in services:
            try:
                service.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                service.process.kill()


def demo_city(
    port: Annotated[
        int, typer.Option(help="The city hub's port; the districts and nodes take the next six")
    ] = 8100,
    data_dir: Annotated[
        Path, typer.Option(help="Where the demo keeps its SQLite files (under levels/)")
    ] = Path(".linli/demo"),
) -> None:
    """Run a city hub over two district hubs over two community nodes each, on this machine."""
    demo_levels(port, data_dir)
