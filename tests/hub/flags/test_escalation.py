"""A flag nobody acknowledges in time goes to the escalation department, as an event."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hub.flags.errors import RoutingConfigError
from hub.flags.routing import load_routing
from schema.enums import OrgKind
from tests.hub.flags.conftest import COMMUNITY, DEPT_ESCALATION, DEPT_GAS, FlagsHub, Subscriber

StartHub = Callable[..., Awaitable[FlagsHub]]
CASE = "query ($id: ID!) { flag(id: $id) { status assignedTo escalationLevel version transitions { status org note } timeline { hop } } }"


async def test_unacknowledged_flag_escalates_and_says_so(
    start_flags_hub: StartHub, tmp_path: Path
) -> None:
    routing = tmp_path / "short.toml"
    routing.write_text(
        f'[[routes]]\ncategory = "gas_leak"\narea = "110105001"\ndepartment = "{DEPT_GAS}"\n'
        f'ack_deadline_s = 1\nescalate_to = "{DEPT_ESCALATION}"\n',
        "utf-8",
    )
    hub = await start_flags_hub(routing_file=routing, duty_desk="110105400099")
    escalation_token = await hub.department_token(DEPT_ESCALATION)
    subscriber = await Subscriber.open(hub.ws_url, escalation_token)
    try:
        await subscriber.ack()
        await subscriber.subscribe(after=0)
        flag_id = await hub.raise_flag(await hub.community_token())
        event = await subscriber.event(timeout_s=30)
        assert event["type"] == "flag.escalated"
        assert event["flagId"] == flag_id
        assert event["assignedTo"] == DEPT_ESCALATION
        assert event["previousAssignee"] == DEPT_GAS
        assert event["status"] == "ROUTED"
        assert "escalated" in {h["hop"] for h in event["timeline"]}
        # Still not acknowledged a second later: on to the duty desk.
        second = await subscriber.event(timeout_s=30)
        assert second["type"] == "flag.escalated"
        assert second["assignedTo"] == "110105400099"
        assert second["previousAssignee"] == DEPT_ESCALATION
    finally:
        await subscriber.close()
    admin = await hub.graphql(await hub.token("110105", OrgKind.HUB, "admin"))
    case = (await admin.data(CASE, {"id": flag_id}))["flag"]
    assert case["escalationLevel"] >= 2
    assert [t["status"] for t in case["transitions"]][:4] == [
        "RAISED",
        "ROUTED",
        "ROUTED",
        "ROUTED",
    ]
    assert "escalated to 110105400000" in case["transitions"][2]["note"]
    assert {"escalated", "escalated_2"} <= {h["hop"] for h in case["timeline"]}
    # The first department lost it and cannot move it any more.
    gas = await hub.graphql(await hub.department_token(DEPT_GAS))
    move = "mutation ($id: ID!, $v: Int!) { transitionFlag(id: $id, to: ACKNOWLEDGED, expectedVersion: $v) { status } }"
    assert await gas.error_code(move, {"id": flag_id, "v": case["version"]}) == "FORBIDDEN"


async def test_acknowledged_flag_does_not_escalate(
    start_flags_hub: StartHub, tmp_path: Path
) -> None:
    routing = tmp_path / "short.toml"
    routing.write_text(
        f'[defaults]\ndepartment = "{DEPT_GAS}"\nack_deadline_s = 2\nescalate_to = "{DEPT_ESCALATION}"\n',
        "utf-8",
    )
    hub = await start_flags_hub(routing_file=routing)
    gas = await hub.graphql(await hub.department_token(DEPT_GAS))
    flag_id = await hub.raise_flag(await hub.community_token(), community=COMMUNITY)
    move = "mutation ($id: ID!) { transitionFlag(id: $id, to: ACKNOWLEDGED, expectedVersion: 1) { status } }"
    await gas.data(move, {"id": flag_id})

    await asyncio.sleep(3.0)  # past the deadline, many escalation rounds
    case = (await gas.data(CASE, {"id": flag_id}))["flag"]
    assert case["assignedTo"] == DEPT_GAS
    assert case["escalationLevel"] == 0
    assert case["status"] == "ACKNOWLEDGED"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[routes]]\ncategory = "alien_invasion"\ndepartment = "110105400003"\n',
            "category = 'alien_invasion' is not in the risk-category code list",
        ),
        (
            '[[routes]]\ncategory = "gas_leak"\ndepartment = "gas-dept"\n',
            "department = 'gas-dept' is not a department code",
        ),
        (
            '[[routes]]\ncategory = "gas_leak"\ndepartment = "110105400003"\nack_deadline_s = 0\n',
            "ack_deadline_s = 0 must be a positive",
        ),
        ("[defaults]\nack_deadline_s = -5\n", "[defaults]: ack_deadline_s = -5 must be a positive"),
        (
            '[[routes]]\ncategory = "gas_leak"\ndepartment = "110105400003"\nescalate_to = "x"\n',
            "escalate_to = 'x' is not a department code",
        ),
        (
            '[[routes]]\ncategory = "gas_leak"\narea = "11a"\ndepartment = "110105400003"\n',
            "area = '11a' must be a division-code prefix",
        ),
        ('[[routes]]\ncategory = "gas_leak"\n', "department is missing"),
        ("[[routes]\n", "cannot read the routing rules"),
    ],
)
def test_bad_routing_rules_stop_the_hub(tmp_path: Path, text: str, message: str) -> None:
    from hub.app import create_app
    from hub.settings import HubSettings

    path = tmp_path / "routing.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(RoutingConfigError) as refused:
        create_app(
            HubSettings(routing_file=path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        )
    assert message in str(refused.value)
    assert str(path) in str(refused.value)


def test_routing_longest_area_wins_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "routing.toml"
    path.write_text(
        '[defaults]\ndepartment = "110105400009"\n'
        '[[routes]]\ncategory = "gas_leak"\narea = "110105"\ndepartment = "110105400007"\n'
        '[[routes]]\ncategory = "gas_leak"\narea = "110105001"\ndepartment = "110105400003"\nack_deadline_s = 600\n',
        "utf-8",
    )
    rules = load_routing(path, duty_desk="110105400000")
    assert rules.route("gas_leak", "110105001001").department == "110105400003"
    assert rules.route("gas_leak", "110105001001").ack_deadline_s == 600
    assert rules.route("gas_leak", "110105002001").department == "110105400007"
    assert rules.route("flooding", "110105001001").department == "110105400009"
    assert rules.route("flooding", "110105001001").escalate_to == "110105400000"
    no_file = load_routing(None, duty_desk="110105400000")
    assert no_file.route("gas_leak", "110105001001").department == "110105400000"
