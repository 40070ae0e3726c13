"""A confirmed flag is filed with the city's Open311 system, and its status there flows back.

The Open311 side is the adapter's fake GeoReport v2 server on a free port, wrapped to
record every POST form as it arrived (the api_key included).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import sqlalchemy as sa

import hub.flags.external
from adapters.base import ADAPTER_ENTRY_POINTS, ExternalStatusChange
from adapters.open311.service import Open311FlagSink
from hub.flags.errors import RoutingConfigError
from hub.flags.external import flag_sinks
from hub.flags.routing import load_routing
from schema.records import RiskFlagBase
from schema.runtime.db import Database
from tests.conftest import ServerThread
from tests.fakes.open311 import FakeOpen311, fake_open311_app
from tests.hub.flags.conftest import (
    COMMUNITY,
    DEPT_DEFAULT,
    DEPT_GAS,
    FlagsHub,
    Receiver,
    Subscriber,
    eventually,
)

StartHub = Callable[..., Awaitable[FlagsHub]]

DEPT_ROADS = "110105400005"
API_KEY = "k-311-never-in-logs"
LOCATION = [116.4435, 39.9087]
DESCRIPTION = "建国路与东三环路口塌陷 Road collapsed at the junction"

MOVE = """mutation ($id: ID!, $to: RiskFlagStatus!, $v: Int!) {
  transitionFlag(id: $id, to: $to, expectedVersion: $v) { version } }"""
CASE = """query ($id: ID!) { flag(id: $id) {
  status version external { system id status at } timeline { hop at } } }"""


def routing_toml(endpoint: str, **target: Any) -> str:
    extra = "".join(f"{key} = {value!r}\n" for key, value in target.items())
    return f"""
[defaults]
department = "{DEPT_DEFAULT}"

[[routes]]
category = "road_blocked"
area = "110105001"
department = "{DEPT_ROADS}"
open311 = "city311"

[[routes]]
category = "gas_leak"
area = "110105001"
department = "{DEPT_GAS}"

[open311.city311]
endpoint = "{endpoint}"
api_key = "{API_KEY}"
service_code = "001"
services = {{ gas_leak = "002" }}
timeout_s = 2.0
token_wait_s = 0.05
{extra}"""


@dataclass
class City311:
    """The fake GeoReport v2 server, and every POST form it was sent."""

    state: FakeOpen311
    url: str = ""
    posts: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> Any:
        inner = fake_open311_app(self.state)

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["method"] != "POST":
                await inner(scope, receive, send)
                return
            chunks: list[bytes] = []

            async def tap() -> Any:
                message = await receive()
                if message["type"] == "http.request":
                    chunks.append(message.get("body", b""))
                return message

            await inner(scope, tap, send)
            self.posts.append(dict(parse_qsl(b"".join(chunks).decode(), keep_blank_values=True)))

        return recording

    def calls(self, prefix: str) -> int:
        return sum(1 for call in self.state.calls if call.startswith(prefix))


@pytest.fixture
def city311() -> Iterator[City311]:
    city = City311(FakeOpen311(api_key=API_KEY))
    server = ServerThread(city.app()).start()
    city.url = server.url
    yield city
    server.stop()


async def start(
    start_flags_hub: StartHub,
    tmp_path: Path,
    city: City311,
    sources: dict[str, str] | None = None,
    **target: Any,
) -> FlagsHub:
    routing = tmp_path / "routing-311.toml"
    routing.write_text(routing_toml(city.url, **target), "utf-8")
    return await start_flags_hub(sources, routing_file=routing, external_poll_s=0.2)


async def confirm(hub: FlagsHub, flag_id: str, department: str = DEPT_ROADS) -> Any:
    client = await hub.graphql(await hub.department_token(department))
    for version, to in enumerate(["ACKNOWLEDGED", "VERIFYING", "CONFIRMED"], start=1):
        await client.data(MOVE, {"id": flag_id, "to": to, "v": version})
    return client


async def raise_road_flag(hub: FlagsHub) -> str:
    return await hub.raise_flag(
        await hub.community_token(),
        category="road_blocked",
        description=DESCRIPTION,
        location={"type": "Point", "coordinates": LOCATION},
        address="建国路与东三环路口",
    )


async def push_rows(hub: FlagsHub) -> list[dict[str, Any]]:
    db = Database(hub.hub.db_url)
    try:
        async with db.sessions() as session:
            rows = await session.execute(sa.text("SELECT * FROM flag_external_pushes"))
            return [dict(r._mapping) for r in rows]
    finally:
        await db.dispose()


def hops(case: dict[str, Any]) -> dict[str, datetime]:
    return {h["hop"]: datetime.fromisoformat(h["at"]) for h in case["timeline"]}


async def test_confirmed_flag_is_filed_then_its_status_flows_back(
    start_flags_hub: StartHub, tmp_path: Path, city311: City311, receivers: Any
) -> None:
    node = Receiver()
    hub = await start(start_flags_hub, tmp_path, city311, {COMMUNITY: receivers(node)})
    flag_id = await raise_road_flag(hub)
    department = await hub.graphql(await hub.department_token(DEPT_ROADS))
    events = await Subscriber.open(hub.ws_url, await hub.department_token(DEPT_ROADS))
    assert (await events.ack())["type"] == "connection_ack"
    await events.subscribe(after=0)
    for version, to in enumerate(["ACKNOWLEDGED", "VERIFYING"], start=1):
        await department.data(MOVE, {"id": flag_id, "to": to, "v": version})
    assert city311.posts == []  # nothing goes out before the department confirms
    await department.data(MOVE, {"id": flag_id, "to": "CONFIRMED", "v": 3})

    await eventually(lambda: _true(len(city311.state.requests) == 1))
    [request] = city311.state.requests.values()
    assert request["service_code"] == "001"
    assert request["lat"] == LOCATION[1]
    assert request["long"] == LOCATION[0]
    assert DESCRIPTION in request["description"]
    assert flag_id in request["description"]
    assert request["address"] == "建国路与东三环路口"
    [form] = city311.posts
    assert form["api_key"] == API_KEY
    assert form["service_code"] == "001"
    request_id = request["service_request_id"]

    async def external_is(status: str) -> dict[str, Any] | None:
        case: dict[str, Any] = (await department.data(CASE, {"id": flag_id}))["flag"]
        external = case["external"]
        return case if external and external["status"] == status else None

    case = await eventually(lambda: external_is("open"))
    assert case["status"] == "CONFIRMED"  # the workflow stays the department's
    assert case["external"]["system"] == "open311:city311"
    assert case["external"]["id"] == request_id
    assert {"external:open311:submitted", "external:open311:open"} <= set(hops(case))

    closed_at = datetime.now(UTC).replace(microsecond=0)
    city311.state.set_status(request_id, "closed", "已修复 repaired", closed_at)
    case = await eventually(lambda: external_is("closed"))
    timeline = hops(case)
    assert timeline["external:open311:closed"] == closed_at
    assert datetime.fromisoformat(case["external"]["at"]) == closed_at
    assert timeline["confirmed"] <= timeline["external:open311:submitted"]

    # Subscribers get it as a flag event ...
    seen: list[dict[str, Any]] = []
    while not any(
        e["type"] == "flag.external_status"
        and "external:open311:closed" in {h["hop"] for h in e["timeline"]}
        for e in seen
    ):
        seen.append(await events.event())
    external_events = [e for e in seen if e["type"] == "flag.external_status"]
    assert all(e["flagId"] == flag_id and e["assignedTo"] == DEPT_ROADS for e in external_events)
    assert len(external_events) == 3  # submitted, open, closed
    await events.close()

    # ... and the community's node as a status update.
    async def node_saw_closed() -> bool:
        return any("external:open311:closed" in r.json()["timeline"] for r in node.received)

    await eventually(node_saw_closed)

    # A closed request is not read again; nothing was filed twice.
    reads = city311.calls(f"GET requests/{request_id}")
    await eventually(lambda: _settled(hub))
    assert city311.calls(f"GET requests/{request_id}") <= reads + 1
    assert len(city311.state.requests) == 1
    assert len(city311.posts) == 1


async def _true(value: bool) -> bool:
    return value


async def _settled(hub: FlagsHub) -> bool:
    [row] = await push_rows(hub)
    return bool(row["status"] == "closed")


@pytest.mark.parametrize(
    ("token_delay", "token_attempts", "reads_at_least"),
    [
        (1, 3, 2),  # the id is there on the second read, right after the POST
        (3, 1, 4),  # the POST gives up waiting; the poller resolves the token later
    ],
)
async def test_token_answers_are_resolved_to_the_request_id(
    start_flags_hub: StartHub,
    tmp_path: Path,
    city311: City311,
    token_delay: int,
    token_attempts: int,
    reads_at_least: int,
) -> None:
    city311.state.token_mode = True
    city311.state.token_delay = token_delay
    hub = await start(start_flags_hub, tmp_path, city311, token_attempts=token_attempts)
    flag_id = await raise_road_flag(hub)
    department = await confirm(hub, flag_id)

    async def resolved() -> dict[str, Any] | None:
        case: dict[str, Any] = (await department.data(CASE, {"id": flag_id}))["flag"]
        external = case["external"]
        return case if external and external["id"] else None

    case = await eventually(resolved)
    [request] = city311.state.requests.values()
    assert case["external"]["id"] == request["service_request_id"]
    assert city311.state.tokens == {"tok-1": request["service_request_id"]}
    assert city311.calls("GET tokens/tok-1") >= reads_at_least
    assert len(city311.posts) == 1
    [row] = await push_rows(hub)
    assert row["external_id"] == request["service_request_id"]  # no longer token:tok-1


async def test_server_errors_are_retried_and_file_exactly_one_request(
    start_flags_hub: StartHub, tmp_path: Path, city311: City311, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    city311.state.fault = "500"
    hub = await start(start_flags_hub, tmp_path, city311)
    flag_id = await raise_road_flag(hub)
    department = await confirm(hub, flag_id)

    await eventually(lambda: _true(len(city311.posts) >= 2))
    assert city311.state.requests == {}
    [row] = await push_rows(hub)
    assert row["pushed_at"] is None
    assert row["last_error"].startswith("UPSTREAM_UNAVAILABLE")
    city311.state.fault = None

    async def filed() -> dict[str, Any] | None:
        case: dict[str, Any] = (await department.data(CASE, {"id": flag_id}))["flag"]
        return case if case["external"] and case["external"]["id"] else None

    case = await eventually(filed)
    [request] = city311.state.requests.values()
    assert case["external"]["id"] == request["service_request_id"]
    await eventually(lambda: _status_read(hub))
    assert len(city311.state.requests) == 1
    [row] = await push_rows(hub)
    assert row["attempts"] == len(city311.posts) >= 3
    assert row["last_error"] is None
    assert API_KEY not in caplog.text


async def _status_read(hub: FlagsHub) -> bool:
    [row] = await push_rows(hub)
    return bool(row["status"] == "open")


async def test_only_confirmed_flags_of_an_open311_route_are_filed(
    start_flags_hub: StartHub, tmp_path: Path, city311: City311
) -> None:
    hub = await start(start_flags_hub, tmp_path, city311)
    dismissed = await raise_road_flag(hub)
    roads = await hub.graphql(await hub.department_token(DEPT_ROADS))
    for version, to in enumerate(["ACKNOWLEDGED", "VERIFYING", "DISMISSED"], start=1):
        await roads.data(MOVE, {"id": dismissed, "to": to, "v": version})
    gas = await hub.raise_flag(await hub.community_token())  # gas_leak: a route without open311
    gas_department = await confirm(hub, gas, DEPT_GAS)
    marker = await raise_road_flag(hub)
    await confirm(hub, marker)

    await eventually(lambda: _true(len(city311.state.requests) == 1))
    [request] = city311.state.requests.values()
    assert marker in request["description"]  # the one confirmed on an Open311 route
    assert [r["flag_id"] for r in await push_rows(hub)] == [marker]
    case = (await gas_department.data(CASE, {"id": gas}))["flag"]
    assert case["status"] == "CONFIRMED"
    assert case["external"] is None
    assert not any(h.startswith("external:") for h in hops(case))
    assert (await roads.data(CASE, {"id": dismissed}))["flag"]["external"] is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(text, "utf-8")
    return path


GOOD_TARGET = f'endpoint = "http://311.example"\napi_key = "{API_KEY}"\nservice_code = "001"\n'
ROUTE = f'[[routes]]\ncategory = "road_blocked"\ndepartment = "{DEPT_ROADS}"\nopen311 = "city311"\n'


def test_open311_routing_is_read_with_its_targets(tmp_path: Path) -> None:
    text = f'[defaults]\nopen311 = "city311"\n{ROUTE}[open311.city311]\n{GOOD_TARGET}'
    text += 'services = { gas_leak = "002" }\njurisdiction_id = "110105"\n'
    rules = load_routing(_write(tmp_path, text), duty_desk="110105400000")
    target = rules.open311["city311"]
    assert target.endpoint == "http://311.example"
    assert target.api_key.get_secret_value() == API_KEY
    assert API_KEY not in repr(target)
    assert target.service_codes()["gas_leak"] == "002"
    assert target.service_codes()["road_blocked"] == "001"
    assert target.jurisdiction_id == "110105"
    assert rules.route("road_blocked", COMMUNITY).open311 == "city311"
    assert rules.default.open311 == "city311"
    assert rules.open311_target("road_blocked", COMMUNITY, DEPT_ROADS) == "city311"
    assert rules.open311_target("road_blocked", COMMUNITY, "110105400000") is None  # escalated


def test_open311_key_may_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITY311_KEY", "from-env")
    text = f'{ROUTE}[open311.city311]\nendpoint = "https://311.example/v2/"\n'
    text += 'api_key_env = "CITY311_KEY"\nservice_code = "001"\n'
    target = load_routing(_write(tmp_path, text), duty_desk="110105400000").open311["city311"]
    assert target.api_key.get_secret_value() == "from-env"
    assert target.endpoint == "https://311.example/v2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ROUTE, "[[routes]] #1: open311 = 'city311' is not an [open311.<name>] table"),
        (
            f"{ROUTE}[open311.city311]\n{GOOD_TARGET}".replace(
                "[open311.city311]", "[open311.city312]"
            ),
            "open311 = 'city311' is not an [open311.<name>] table (defined: city312)",
        ),
        (
            f'{ROUTE}[open311.city311]\napi_key = "{API_KEY}"\nservice_code = "001"\n',
            "[open311.city311]: endpoint = None must be a non-empty string",
        ),
        (
            f"{ROUTE}[open311.city311]\n{GOOD_TARGET}".replace("http://311", "ftp://311"),
            "endpoint = 'ftp://311.example' is not an http(s) URL",
        ),
        (
            f"{ROUTE}[open311.city311]\n{GOOD_TARGET}".replace("http://", f"http://u:{API_KEY}@"),
            "endpoint must not carry credentials or a query",
        ),
        (
            f'{ROUTE}[open311.city311]\nendpoint = "http://311.example"\nservice_code = "001"\n',
            "give exactly one of api_key and api_key_env",
        ),
        (
            f"{ROUTE}[open311.city311]\n{GOOD_TARGET}".replace(f'"{API_KEY}"', "42"),
            "[open311.city311]: api_key must be a non-empty string",
        ),
        (
            f'{ROUTE}[open311.city311]\n{GOOD_TARGET}api_key_env = "X"\n',
            "give exactly one of api_key and api_key_env",
        ),
        (
            f"{ROUTE}[open311.city311]\n{GOOD_TARGET}".replace('service_code = "001"\n', ""),
            "service_code = None must be a non-empty string",
        ),
        (
            f'{ROUTE}[open311.city311]\n{GOOD_TARGET}services = {{ meteor = "9" }}\n',
            "services.meteor is not in the risk-category code list",
        ),
        (
            f"{ROUTE}[open311.city311]\n{GOOD_TARGET}timeout_s = 0\n",
            "timeout_s = 0 must be a positive number",
        ),
        (
            f'{ROUTE}[open311.city311]\n{GOOD_TARGET}password = "{API_KEY}"\n',
            "[open311.city311]: unknown key(s) password",
        ),
        (f'{ROUTE}open311 = "x"\n', "cannot read the routing rules"),
    ],
)
def test_bad_open311_settings_stop_the_hub_without_showing_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(RoutingConfigError) as raised:
        load_routing(_write(tmp_path, text), duty_desk="110105400000")
    assert message in str(raised.value)
    assert API_KEY not in str(raised.value)


# --- adapters are found through the entry-point group linli.adapters -------------------


async def test_the_open311_sink_is_the_linli_adapters_entry_point(tmp_path: Path) -> None:
    [entry] = entry_points(group=ADAPTER_ENTRY_POINTS, name="open311")
    assert entry.value == "adapters.open311.service:open311_flag_sink"
    text = f'{ROUTE}[open311.city311]\n{GOOD_TARGET}services = {{ gas_leak = "002" }}\n'
    rules = load_routing(_write(tmp_path, text), duty_desk="110105400000")
    async with httpx.AsyncClient(timeout=30.0) as http:
        sinks = flag_sinks(http, rules.open311)
        sink = sinks["city311"]
        assert isinstance(sink, Open311FlagSink)
        assert sink.client.fetcher.http is http  # the hub's one client, not one of its own
    assert sink.settings.endpoint == "http://311.example"
    assert sink.settings.api_key.get_secret_value() == API_KEY
    assert sink.settings.flag_services["gas_leak"] == "002"
    assert sink.settings.flag_services["road_blocked"] == "001"


@dataclass
class RecordingSink:
    """A ``FlagSink`` of another package: files every flag as ``R-<n>``, never changes."""

    options: Mapping[str, Any]
    pushed: list[str] = field(default_factory=list)

    async def push(self, flag_id: str, flag: RiskFlagBase) -> str:
        self.pushed.append(flag_id)
        return f"R-{len(self.pushed)}"

    async def resolve(self, external_id: str) -> str:
        return external_id

    async def status_changes(
        self, external_ids: Sequence[str], since: datetime | None
    ) -> list[ExternalStatusChange]:
        return []


RECORDED: list[RecordingSink] = []


def recording_sink(http: httpx.AsyncClient, options: Mapping[str, Any]) -> RecordingSink:
    """The entry point's factory (``FlagSinkFactory``)."""
    sink = RecordingSink(options)
    RECORDED.append(sink)
    return sink


async def test_a_confirmed_flag_is_filed_through_the_sink_its_entry_point_names(
    start_flags_hub: StartHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = EntryPoint(
        "open311", f"{__name__}:recording_sink", ADAPTER_ENTRY_POINTS
    )  # as another installed package would declare it

    def found(*, group: str, name: str) -> list[EntryPoint]:
        return [entry] if (group, name) == (ADAPTER_ENTRY_POINTS, "open311") else []

    monkeypatch.setattr(hub.flags.external, "entry_points", found)
    RECORDED.clear()
    routing = tmp_path / "routing-311.toml"
    routing.write_text(routing_toml("http://127.0.0.1:9"), "utf-8")  # never called
    hub_ = await start_flags_hub(routing_file=routing, external_poll_s=0.2)
    [sink] = RECORDED
    assert sink.options["endpoint"] == "http://127.0.0.1:9"
    flag_id = await raise_road_flag(hub_)
    await confirm(hub_, flag_id)

    async def filed() -> bool:
        rows = await push_rows(hub_)
        return bool(rows and rows[0]["external_id"] == "R-1")

    await eventually(filed)
    assert sink.pushed == [flag_id]


async def test_routes_naming_an_adapter_that_is_not_installed_stop_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.flags.external, "entry_points", lambda **_: [])
    text = f"{ROUTE}[open311.city311]\n{GOOD_TARGET}"
    rules = load_routing(_write(tmp_path, text), duty_desk="110105400000")
    async with httpx.AsyncClient(timeout=30.0) as http:
        with pytest.raises(RoutingConfigError, match="no adapter 'open311' is installed"):
            flag_sinks(http, rules.open311)
