"""compose.yaml is a district that runs: its production topology, started without Docker.

There is no container engine on these machines, so ``ComposeRun`` plays one. It
reads compose.yaml and starts every service as a process with exactly the command
and environment compose would give it, after compose's own ``${VAR}``
interpolation from a test environment. Only what a container engine provides is
stood in for: the district's network (every ``*_HOST`` is 127.0.0.1 and every
``*_PORT`` a free port), the ``postgres`` service (the machine's PostgreSQL, its
databases made by ``deploy/postgres-init.sql`` under a fresh ``LINLI_DB_SUFFIX``),
named volumes (a folder each; a service runs in the volume mounted at its
``working_dir``) and the image's ``PATH`` (this interpreter's). Services start in
``depends_on`` order, waiting for ``init`` to finish and for healthchecks, which
run as written. Then the flag journey and a federated query run against it, as
the clients an operator adds with ``linli clients add``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from hub import cli
from tests.conftest import BACKENDS, CAP_SAMPLES, PG_DSN, GraphQLClient, _pg_admin, free_port
from tests.e2e.test_flag_journey import AT_NODE, MOVE
from tests.hub.flags.conftest import eventually
from tests.node.flags.conftest import RAISE, flag_input
from tests.node.test_records import CREATE_RESOURCE, resource

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "compose.yaml"
POSTGRES_INIT = REPO / "deploy" / "postgres-init.sql"
#: The services compose.yaml must have, and the address variables of each.
LINLI_SERVICES = {
    "hub": "HUB",
    "node-yonganli": "YONGANLI",
    "node-guanghuali": "GUANGHUALI",
    "node-jianguoli": "JIANGUOLI",
    "adapter-cap": "CAP",
}
NODE_ORGS = {"node-yonganli": "110105001001", "node-guanghuali": "110105001002",
             "node-jianguoli": "110105001003"}  # fmt: skip
READY_TIMEOUT_S = 180.0


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    return loaded


# --- compose's variable interpolation ---------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_]\w*))"
)


class MissingVariable(Exception):
    """A ``${VAR:?message}`` whose variable is unset or empty."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with compose's ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR:?e}``, ``$$`` applied."""

    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        value = variables.get(name)
        op, arg = match["op"], match["arg"] or ""
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-") and unset:
            return interpolate(arg, variables)
        if op in (":?", "?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(one, text)


def resolved(value: Any, variables: Mapping[str, str]) -> Any:
    """A compose value (string, list, mapping) with every string interpolated."""
    if isinstance(value, str):
        return interpolate(value, variables)
    if isinstance(value, list):
        return [resolved(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: resolved(item, variables) for key, item in value.items()}
    return value


# --- a container engine's part, played by the test ---------------------------------------


@dataclass
class Running:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-3000:]


@dataclass
class ComposeRun:
    """compose.yaml's services as processes on this machine (see the module docstring)."""

    folder: Path
    variables: dict[str, str]
    compose: dict[str, Any] = field(default_factory=_compose)
    running: dict[str, Running] = field(default_factory=dict)
    began: float = field(default_factory=time.monotonic)

    def service(self, name: str) -> dict[str, Any]:
        spec: dict[str, Any] = resolved(self.compose["services"][name], self.variables)
        return spec

    def environment(self, name: str) -> dict[str, str]:
        """The process environment: the image's PATH and the service's own variables."""
        own = {k: str(v) for k, v in self.service(name).get("environment", {}).items()}
        path = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"
        return {"PATH": path, "HOME": str(self.folder), "LANG": "C.UTF-8", **own}

    def working_dir(self, name: str) -> Path:
        """The named volume mounted at the service's working_dir, as a folder here."""
        spec = self.service(name)
        for mount in spec.get("volumes", []):
            volume, target = mount.split(":")[:2]
            if target == spec["working_dir"] and volume in self.compose["volumes"]:
                folder = self.folder / "volumes" / volume
                folder.mkdir(parents=True, exist_ok=True)
                return folder
        raise AssertionError(f"{name}: no named volume at its working_dir")

    def run(self, name: str, command: list[str]) -> subprocess.CompletedProcess[str]:
        """``docker compose run --rm <name> <command>``."""
        return subprocess.run(
            command, cwd=self.working_dir(name), env=self.environment(name),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def start(self, name: str) -> None:
        log = self.folder / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("wb") as out:
            process = subprocess.Popen(
                self.service(name)["command"], cwd=self.working_dir(name),
                env=self.environment(name), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.running[name] = Running(name, process, log)

    def up(self) -> None:
        """Start every service but postgres, in depends_on order, as compose would."""
        for name in self._order():
            for dependency, condition in self.service(name).get("depends_on", {}).items():
                self._wait(dependency, condition["condition"])
            self.start(name)
            print(f"{time.monotonic() - self.began:6.1f} s  started {name}")

    def _order(self) -> list[str]:
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order or name == "postgres":
                return
            for dependency in self.compose["services"][name].get("depends_on", {}):
                visit(dependency)
            order.append(name)

        for name in self.compose["services"]:
            visit(name)
        return order

    def _wait(self, name: str, condition: str) -> None:
        if name == "postgres":
            return  # the machine's PostgreSQL is up
        running = self.running[name]
        if condition == "service_completed_successfully":
            code = running.process.wait(timeout=READY_TIMEOUT_S)
            assert code == 0, f"{name} exited {code}:\n{running.tail()}"
        elif condition == "service_healthy":
            self.wait_healthy(name)

    def wait_healthy(self, name: str) -> None:
        """Run the service's healthcheck, as written, until it passes."""
        test = self.service(name)["healthcheck"]["test"]
        command = ["sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
        running = self.running[name]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert running.process.poll() is None, f"{name} exited:\n{running.tail()}"
            check = subprocess.run(
                command, env=self.environment(name), capture_output=True, timeout=30, check=False
            )
            if check.returncode == 0:
                return
            assert time.monotonic() < deadline, f"{name} never healthy:\n{running.tail()}"
            time.sleep(0.5)

    def down(self) -> None:
        for running in self.running.values():
            if running.process.poll() is None:
                running.process.terminate()
        for running in self.running.values():
            try:
                running.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait()

    def url(self, name: str) -> str:
        prefix = LINLI_SERVICES[name]
        return f"http://{self.variables[prefix + '_HOST']}:{self.variables[prefix + '_PORT']}"


def _databases() -> list[str]:
    return re.findall(r"^CREATE DATABASE (\w+);", POSTGRES_INIT.read_text("utf-8"), re.M)


def _test_variables() -> dict[str, str]:
    """What an operator sets (secrets, public URL, CAP feeds) and the network's addresses."""
    postgres = urlsplit(PG_DSN)
    variables = {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),  # the machine's server trusts local users
        "POSTGRES_HOST": postgres.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(postgres.port or 5432),
        "LINLI_DB_SUFFIX": f"_compose_{uuid.uuid4().hex[:10]}",
        "HUB_CURSOR_SECRET": secrets.token_urlsafe(32),
        "HUB_SECRETS_KEY": Fernet.generate_key().decode("ascii"),
        "CAP_SOURCES": json.dumps([str(CAP_SAMPLES)]),
    }
    for prefix in LINLI_SERVICES.values():
        variables[f"{prefix}_HOST"] = "127.0.0.1"
        variables[f"{prefix}_PORT"] = str(free_port())
    variables["HUB_PUBLIC_URL"] = f"http://127.0.0.1:{variables['HUB_PORT']}"
    return variables


@pytest.fixture
async def district(tmp_path: Path) -> AsyncIterator[ComposeRun]:
    """The district of compose.yaml, up; its databases are dropped afterwards."""
    if "postgresql" not in BACKENDS:
        pytest.skip("the production topology runs on PostgreSQL only")
    run = ComposeRun(tmp_path, _test_variables())
    names = [name + run.variables["LINLI_DB_SUFFIX"] for name in _databases()]
    for name in names:
        await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(run.up)
        yield run
    finally:
        await asyncio.to_thread(run.down)
        for running in run.running.values():  # shown when the test fails
            print(f"--- {running.name} (exit {running.process.returncode})\n{running.tail()}")
        for name in names:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the file itself --------------------------------------------------------------------


def test_the_services_are_the_production_district() -> None:
    compose = _compose()
    assert set(compose["services"]) == {"postgres", "init", *LINLI_SERVICES}
    variables = _test_variables()
    for name in LINLI_SERVICES:
        environment = resolved(compose["services"][name]["environment"], variables)
        assert environment["LINLI_ENVIRONMENT"] == "production", name
        assert not any("TRUSTED_CALLERS" in key for key in environment), name
        if name != "hub":
            assert environment["LINLI_TOKEN_ISSUER"] == variables["HUB_PUBLIC_URL"], name


def test_every_linli_command_is_a_real_cli_command() -> None:
    runner = CliRunner()
    services = _compose()["services"]
    commands = [services[name]["command"] for name in LINLI_SERVICES]
    script = services["init"]["command"][-1]
    commands += [
        line.split("&")[0].split() for line in script.splitlines() if line.startswith("linli ")
    ]
    assert len(commands) == len(LINLI_SERVICES) + 5  # and init's five migrations
    for command in commands:
        assert command[0] == "linli"
        result = runner.invoke(cli.app, [*command[1:3], "--help"])
        assert result.exit_code == 0, (command, result.output)
        for option in (part for part in command if part.startswith("--")):
            assert option in result.output, (option, command)
    added = runner.invoke(cli.app, ["clients", "add", "--help"])
    for option in re.findall(r"--[a-z-]+", script[script.index("linli clients add") :]):
        assert option in added.output, option


def test_every_database_is_made_by_the_postgres_init_file() -> None:
    variables = _test_variables() | {"LINLI_DB_SUFFIX": ""}
    urls = resolved(_compose()["services"]["init"]["environment"], variables)
    wanted = {url.rsplit("/", 1)[1] for key, url in urls.items() if key.endswith("DATABASE_URL")}
    assert wanted == set(_databases())


def test_a_missing_secret_is_named() -> None:
    variables = _test_variables()
    del variables["POSTGRES_PASSWORD"]
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD: set POSTGRES_PASSWORD"):
        resolved(_compose()["services"]["init"], variables)


def test_interpolation_follows_compose() -> None:
    given = {"SET": "x", "EMPTY": ""}
    assert interpolate("$$SET ${SET} $SET ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d}", given) == (
        "$SET x x d d "
    )
    with pytest.raises(MissingVariable, match="EMPTY: needed"):
        interpolate("${EMPTY:?needed}", given)


# --- the district, running --------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str


def _add_client(district: ComposeRun, *, org: str, kind: str, scopes: str) -> Client:
    """``docker compose run --rm init linli clients add ...``, as the README says."""
    database = district.environment("init")["HUB_DATABASE_URL"]
    done = district.run(
        "init",
        ["linli", "clients", "add", "--database-url", database, "--org", org,
         "--org-kind", kind, "--district", "110105", "--scopes", scopes],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = dict(re.findall(r"^(client_id|client_secret):\s+(\S+)$", done.stdout, re.M))
    return Client(found["client_id"], found["client_secret"])


async def _token(hub: str, client: Client, resource: str | None = None) -> str:
    form = {"grant_type": "client_credentials"} | ({"resource": resource} if resource else {})
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{hub}/oauth/token", data=form, auth=(client.client_id, client.secret)
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.mark.slow
async def test_the_district_runs_the_flag_journey_and_a_federated_query(
    district: ComposeRun,
) -> None:
    hub_url = district.url("hub")
    community = NODE_ORGS["node-yonganli"]
    desk = district.service("hub")["environment"]["LINLI_DUTY_DESK"]
    # init wrote each node's credentials, and nothing else printed a secret.
    init_log = district.running["init"].tail()
    for org in NODE_ORGS.values():
        credentials = district.working_dir("init") / f"node-{org}.toml"
        assert oct(credentials.stat().st_mode & 0o777) == "0o600"
        secret = re.search(r'hub_client_secret = "(.+)"', credentials.read_text("utf-8"))
        assert secret, credentials
        assert secret.group(1) not in init_log

    staff_client, department_client = await asyncio.gather(
        asyncio.to_thread(
            _add_client, district, org=community, kind="community",
            scopes="risk:flag incidents:read records:write resources:read",
        ),
        asyncio.to_thread(
            _add_client, district, org=desk, kind="department",
            scopes="risk:verify resources:read alerts:read",
        ),
    )  # fmt: skip
    staff = GraphQLClient(
        district.url("node-yonganli"), await _token(hub_url, staff_client, community)
    )
    department = GraphQLClient(hub_url, await _token(hub_url, department_client))
    try:
        # The hub has read every source's well-known document.
        async def all_ok() -> bool:
            body = await department.data("{ sources { id status } }")
            return {s["id"]: s["status"] for s in body["sources"]} == {
                **dict.fromkeys(NODE_ORGS.values(), "ok"), "adapter-cap": "ok",
            }  # fmt: skip

        await eventually(all_ok, timeout_s=60)

        # A federated query: a resource created at a node, read through the hub.
        made = await staff.data(CREATE_RESOURCE, {"input": resource(name="移动发电机")})
        body = await department.post("{ resources { edges { node { id owner name } } } }")
        assert "errors" not in body, body
        assert [e["node"] for e in body["data"]["resources"]["edges"]] == [
            {"id": made["createResource"]["id"], "owner": community, "name": "移动发电机"}
        ]
        answered = {s["source"]: s["status"] for s in body["extensions"]["sources"]}
        assert answered == dict.fromkeys(NODE_ORGS.values(), "ok"), body["extensions"]
        alerts = await department.post("{ alerts { edges { node { identifier } } } }")
        assert "errors" not in alerts, alerts
        answered = {s["source"]: s["status"] for s in alerts["extensions"]["sources"]}
        assert answered == {**dict.fromkeys(NODE_ORGS.values(), "ok"), "adapter-cap": "ok"}

        # Community staff raise a flag at their node; it reaches the duty desk at the hub.
        flag_id = (await staff.data(RAISE, {"i": flag_input(1)}))["raiseRiskFlag"]["id"]

        async def at_hub() -> dict[str, Any] | None:
            listed = await department.data(
                "{ flags { edges { node { id status assignedTo version community } } } }"
            )
            found = [e["node"] for e in listed["flags"]["edges"] if e["node"]["id"] == flag_id]
            return found[0] if found else None

        flag = await eventually(at_hub, timeout_s=30)
        assert (flag["assignedTo"], flag["community"]) == (desk, community)

        # The department moves it to resolved; every step comes back to the node.
        version = flag["version"]
        for to in ("ACKNOWLEDGED", "VERIFYING", "CONFIRMED", "RESOLVED"):
            moved = await department.data(MOVE, {"id": flag_id, "to": to, "v": version})
            assert moved["transitionFlag"]["status"] == to
            version = moved["transitionFlag"]["version"]

        async def resolved_at_node() -> dict[str, Any] | None:
            state: dict[str, Any] = (await staff.data(AT_NODE, {"id": flag_id}))["node"]
            return state if state["status"] == "RESOLVED" else None

        state = await eventually(resolved_at_node, timeout_s=30)
        assert [t["status"] for t in state["transitions"]] == [
            "RAISED", "ROUTED", "ACKNOWLEDGED", "VERIFYING", "CONFIRMED", "RESOLVED",
        ]  # fmt: skip
        assert state["assignedTo"] == desk
    finally:
        await staff.aclose()
        await department.aclose()
    # Production: the hub serves no GraphiQL, and refuses a query without a token.
    async with httpx.AsyncClient(base_url=hub_url, timeout=30) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert not page.headers["content-type"].startswith("text/html")
        assert (await http.get("/graphiql/graphiql.min.js")).status_code == 404
    assert all(r.process.poll() is None for n, r in district.running.items() if n != "init")
