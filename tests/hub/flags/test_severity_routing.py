"""Routing rules by severity: a rule with ``severity`` takes flags of at least that severity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hub.flags.errors import RoutingConfigError
from hub.flags.routing import load_routing
from schema.enums import OrgKind
from tests.hub.flags.conftest import COMMUNITY, DEPT_ESCALATION, DEPT_GAS, FlagsHub

StartHub = Callable[..., Awaitable[FlagsHub]]

DUTY = "110105400000"
CITY_DEPT = "110100400001"  # a department of the city above district 110105
CITY_DUTY = "110100400000"

RULES = f"""
[defaults]
department = "110105400009"

[[routes]]
category = "gas_leak"
area = "110105001"
department = "{DEPT_GAS}"

[[routes]]
category = "gas_leak"
area = "110105001"
severity = "II"
department = "{CITY_DEPT}"
ack_deadline_s = 300
escalate_to = "{CITY_DUTY}"

[[routes]]
category = "gas_leak"
area = "110105001"
severity = "I"
department = "{CITY_DUTY}"

[[routes]]
category = "gas_leak"
area = "110105"
severity = "III"
department = "110105400007"

[[routes]]
category = "flooding"
severity = "III"
department = "110105400006"
"""


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(text, "utf-8")
    return path


def test_a_severity_rule_takes_flags_of_at_least_its_severity(tmp_path: Path) -> None:
    rules = load_routing(rules_file(tmp_path, RULES), duty_desk=DUTY)
    route = rules.route
    # Same area: the rule whose severity the flag reaches beats the one without, and of two
    # reached the stricter one wins.
    assert route("gas_leak", COMMUNITY, "I").department == CITY_DUTY
    assert route("gas_leak", COMMUNITY, "II").department == CITY_DEPT
    assert route("gas_leak", COMMUNITY, "II").ack_deadline_s == 300
    assert route("gas_leak", COMMUNITY, "II").escalate_to == CITY_DUTY
    assert "severity II or more" in route("gas_leak", COMMUNITY, "II").rule
    assert route("gas_leak", COMMUNITY, "III").department == DEPT_GAS
    assert route("gas_leak", COMMUNITY, "IV").department == DEPT_GAS
    # Unknown severity: only rules without one.
    assert route("gas_leak", COMMUNITY).department == DEPT_GAS
    assert route("gas_leak", COMMUNITY, "V").department == DEPT_GAS
    # A longer area beats a shorter one whatever the severities.
    assert route("gas_leak", COMMUNITY, "III").department == DEPT_GAS
    # Another street: only the district-wide rule of severity III or more.
    assert route("gas_leak", "110105002001", "I").department == "110105400007"
    assert route("gas_leak", "110105002001", "III").department == "110105400007"
    assert route("gas_leak", "110105002001", "IV").department == "110105400009"
    # A severity rule alone for its category: below it, the defaults.
    assert route("flooding", COMMUNITY, "III").department == "110105400006"
    assert route("flooding", COMMUNITY, "IV").department == "110105400009"
    assert rules.departments()[CITY_DEPT].startswith("route #2")


def test_open311_target_follows_the_severity_route(tmp_path: Path) -> None:
    text = (
        '[open311.city311]\nendpoint = "https://311.example.gov.cn/open311/v2"\n'
        'api_key = "k"\nservice_code = "001"\n'
        f'[[routes]]\ncategory = "gas_leak"\ndepartment = "{DEPT_GAS}"\n'
        f'[[routes]]\ncategory = "gas_leak"\nseverity = "II"\ndepartment = "{CITY_DEPT}"\n'
        'open311 = "city311"\n'
    )
    rules = load_routing(rules_file(tmp_path, text), duty_desk=DUTY)
    assert rules.open311_target("gas_leak", COMMUNITY, CITY_DEPT, "I") == "city311"
    assert rules.open311_target("gas_leak", COMMUNITY, DEPT_GAS, "IV") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f'[[routes]]\ncategory = "gas_leak"\nseverity = "V"\ndepartment = "{DEPT_GAS}"\n',
            "severity = 'V' is not a severity level (I, II, III, IV; a rule takes flags of at"
            " least that severity)",
        ),
        (
            f'[[routes]]\ncategory = "gas_leak"\nseverity = 2\ndepartment = "{DEPT_GAS}"\n',
            "severity = 2 is not a severity level",
        ),
        (
            f'[[routes]]\ncategory = "gas_leak"\nseverity = "ii"\ndepartment = "{DEPT_GAS}"\n',
            "severity = 'ii' is not a severity level",
        ),
        (
            f'[[routes]]\ncategory = "gas_leak"\nseverity = "II"\ndepartment = "{DEPT_GAS}"\n'
            f'[[routes]]\ncategory = "gas_leak"\nseverity = "II"\ndepartment = "{CITY_DEPT}"\n',
            "#2: another rule has the same category, area and severity",
        ),
        ('[defaults]\nseverity = "II"\n', "[defaults]: unknown key(s) severity"),
    ],
)
def test_bad_severity_in_a_rule_stops_the_hub(tmp_path: Path, text: str, message: str) -> None:
    from hub.app import create_app
    from hub.settings import HubSettings

    path = rules_file(tmp_path, text)
    with pytest.raises(RoutingConfigError) as refused:
        create_app(
            HubSettings(routing_file=path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        )
    assert message in str(refused.value)
    assert str(path) in str(refused.value)


def test_same_area_with_and_without_severity_is_not_a_duplicate(tmp_path: Path) -> None:
    text = (
        f'[[routes]]\ncategory = "gas_leak"\ndepartment = "{DEPT_GAS}"\n'
        f'[[routes]]\ncategory = "gas_leak"\nseverity = "II"\ndepartment = "{CITY_DEPT}"\n'
        f'[[routes]]\ncategory = "gas_leak"\nseverity = "I"\ndepartment = "{CITY_DUTY}"\n'
    )
    assert len(load_routing(rules_file(tmp_path, text), duty_desk=DUTY).rules) == 3


CASE = (
    "query ($id: ID!) { flag(id: $id) { status assignedTo version"
    " transitions { status org note } } }"
)


async def test_a_severe_flag_goes_to_the_city_and_a_minor_one_to_the_district(
    start_flags_hub: StartHub, tmp_path: Path
) -> None:
    routing = rules_file(
        tmp_path,
        f'[[routes]]\ncategory = "gas_leak"\narea = "110105001"\ndepartment = "{DEPT_GAS}"\n'
        f'escalate_to = "{DEPT_ESCALATION}"\n'
        f'[[routes]]\ncategory = "gas_leak"\narea = "110105001"\nseverity = "II"\n'
        f'department = "{CITY_DEPT}"\nescalate_to = "{CITY_DUTY}"\n',
    )
    hub = await start_flags_hub(routing_file=routing)
    community = await hub.community_token()
    severe = await hub.raise_flag(community, estimated_severity="I")
    minor = await hub.raise_flag(community, estimated_severity="IV")
    admin = await hub.graphql(await hub.token("110105", OrgKind.HUB, "admin"))
    severe_case = (await admin.data(CASE, {"id": severe}))["flag"]
    minor_case = (await admin.data(CASE, {"id": minor}))["flag"]
    assert severe_case["status"] == "ROUTED"
    assert severe_case["assignedTo"] == CITY_DEPT
    assert f"to {CITY_DEPT} by route #2" in severe_case["transitions"][-1]["note"]
    assert minor_case["status"] == "ROUTED"
    assert minor_case["assignedTo"] == DEPT_GAS
    assert f"to {DEPT_GAS} by route #1" in minor_case["transitions"][-1]["note"]
    # The city department works its flag; the district's department may not touch it.
    move = (
        "mutation ($id: ID!, $v: Int!) {"
        " transitionFlag(id: $id, to: ACKNOWLEDGED, expectedVersion: $v) { status } }"
    )
    district = await hub.graphql(await hub.department_token(DEPT_GAS))
    assert (
        await district.error_code(move, {"id": severe, "v": severe_case["version"]}) == "FORBIDDEN"
    )
    city = await hub.graphql(await hub.department_token(CITY_DEPT))
    moved = await city.data(move, {"id": severe, "v": severe_case["version"]})
    assert moved["transitionFlag"]["status"] == "ACKNOWLEDGED"
    # The community sees both, each with the department its severity sent it to.
    mine = await hub.graphql(await hub.community_token(scopes="risk:flag"))
    seen = {
        flag_id: (await mine.data(CASE, {"id": flag_id}))["flag"]["assignedTo"]
        for flag_id in (severe, minor)
    }
    assert seen == {severe: CITY_DEPT, minor: DEPT_GAS}
