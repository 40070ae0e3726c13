"""The superior relation (上级部门): the baseline table, and an owner deciding apart from its district."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import Disclosure, Mode, PolicyEngine, Relation, relation_of
from policies.caller import is_superior_division, superior_divisions
from schema.enums import OrgKind
from schema.fields import FieldGroup
from tests.policies.world import DEPARTMENT, OWNER, READ_SCOPES, SELF, caller

CITY = caller("110100400001", OrgKind.DEPARTMENT, district="110100")
PROVINCE = caller("110000400001", OrgKind.DEPARTMENT, district="110000")
CITY_HUB = caller("hub-110100", OrgKind.HUB, district="110100")
OTHER_CITY = caller("120100400001", OrgKind.DEPARTMENT, district="120100")  # Tianjin
CITY_COMMUNITY = caller("110100001001", OrgKind.COMMUNITY, district="110100")
CITY_NO_SCOPES = caller(
    "110100400002", OrgKind.DEPARTMENT, READ_SCOPES - {"resources:read"}, district="110100"
)
FACTS = {
    "Resource": {"shareable": True},
    "Shelter": {"status": "open"},
    "Incident": {},
    "RiskFlag": {},
}


def relation(who: object) -> Relation:
    return OWNER.relation_of(who)  # type: ignore[arg-type]


def test_the_codes_above_a_district() -> None:
    assert superior_divisions("110105") == ("110100", "110000")
    assert superior_divisions("110100") == ()  # a city is no county
    assert is_superior_division("110100", "110105")
    assert is_superior_division("110000", "110105")
    assert not is_superior_division("120100", "110105")
    assert not is_superior_division("110105", "110105")
    assert not is_superior_division(None, "110105")


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (CITY, Relation.SUPERIOR),
        (PROVINCE, Relation.SUPERIOR),
        (CITY_HUB, Relation.SUPERIOR),
        (OTHER_CITY, Relation.PUBLIC),
        (CITY_COMMUNITY, Relation.PUBLIC),  # only departments and hubs are superiors
        (DEPARTMENT, Relation.DISTRICT),
    ],
)
def test_who_is_a_superior(who: object, expected: Relation) -> None:
    assert relation(who) == expected
    assert (
        relation_of(who, owner=OWNER.org, owner_district="110105", neighbours=frozenset())  # type: ignore[arg-type]
        == expected
    )


# (caller, record type, group): the baseline's disclosure for a superior and others.
BASELINE = [
    (CITY, "Resource", FieldGroup.IDENTITY, Disclosure.DENY),  # no records by default
    (CITY, "Resource", FieldGroup.QUANTITY_EXACT, Disclosure.APPROXIMATE),  # bands
    (CITY, "Resource", FieldGroup.LOCATION_EXACT, Disclosure.APPROXIMATE),
    (CITY, "Incident", FieldGroup.IDENTITY, Disclosure.DENY),
    (CITY, "RiskFlag", FieldGroup.IDENTITY, Disclosure.DENY),
    (CITY, "Shelter", FieldGroup.IDENTITY, Disclosure.EXACT),  # open shelters are public
    (PROVINCE, "Resource", FieldGroup.QUANTITY_EXACT, Disclosure.APPROXIMATE),
    (OTHER_CITY, "Resource", FieldGroup.QUANTITY_EXACT, Disclosure.DENY),
    (DEPARTMENT, "Resource", FieldGroup.IDENTITY, Disclosure.EXACT),
]


@pytest.mark.parametrize(("who", "record_type", "group", "expected"), BASELINE)
def test_the_baseline_table_for_superiors(
    who: object, record_type: str, group: FieldGroup, expected: Disclosure
) -> None:
    engine = PolicyEngine()
    decision = engine.decide(
        who,  # type: ignore[arg-type]
        relation(who),
        OWNER,
        record_type,
        group,
        mode=Mode.NORMAL,
        record_facts=FACTS[record_type],
    )
    assert decision.disclosure is expected, decision


# (caller, record type, counts in totals?)
AGGREGATES = [
    (CITY, "Resource", True),
    (CITY, "Shelter", True),
    (CITY, "Incident", True),
    (CITY, "RiskFlag", True),
    (PROVINCE, "Resource", True),
    (CITY_HUB, "Resource", True),
    (DEPARTMENT, "Resource", True),
    (SELF, "Resource", True),
    (OTHER_CITY, "Resource", False),
    (CITY_COMMUNITY, "Resource", False),
    (CITY_NO_SCOPES, "Resource", False),  # scopes are necessary for totals too
    (CITY, "Volunteer", False),
]


@pytest.mark.parametrize(("who", "record_type", "expected"), AGGREGATES)
def test_the_baseline_table_for_totals(who: object, record_type: str, expected: bool) -> None:
    engine = PolicyEngine()
    allowed = engine.may_aggregate(
        who,  # type: ignore[arg-type]
        relation(who),
        OWNER,
        record_type,
        mode=Mode.NORMAL,
        record_facts=FACTS.get(record_type, {}),
    )
    assert allowed is expected


def test_a_community_decides_what_the_city_sees_apart_from_its_district(tmp_path: Path) -> None:
    policy = tmp_path / "owner.cedar"
    policy.write_text(
        '@id("owner.city.resources")\n'
        'permit (principal, action == Linli::Action::"read_exact", resource is Linli::Resource)\n'
        'when { context.relation == "superior" && principal has district &&\n'
        "  resource.owner has superiors && resource.owner.superiors.contains(principal.district)"
        ' && resource.group == "identity" };\n'
        '@id("owner.no-totals-for-the-province")\n'
        'forbid (principal, action == Linli::Action::"read_aggregate", resource)\n'
        'when { context.relation == "superior" && principal has district &&'
        ' principal.district == "110000" };\n',
        "utf-8",
    )
    engine = PolicyEngine(policy)

    def shown(who: object, group: FieldGroup) -> Disclosure:
        return engine.decide(
            who,  # type: ignore[arg-type]
            relation(who),
            OWNER,
            "Resource",
            group,
            mode=Mode.NORMAL,
            record_facts={"shareable": True},
        ).disclosure

    def counted(who: object) -> bool:
        return engine.may_aggregate(
            who,  # type: ignore[arg-type]
            relation(who),
            OWNER,
            "Resource",
            mode=Mode.NORMAL,
            record_facts={"shareable": True},
        )

    assert shown(CITY, FieldGroup.IDENTITY) is Disclosure.EXACT  # the city now sees records
    assert shown(CITY, FieldGroup.QUANTITY_EXACT) is Disclosure.APPROXIMATE  # still in bands
    assert shown(DEPARTMENT, FieldGroup.QUANTITY_EXACT) is Disclosure.EXACT  # the district: exact
    assert counted(CITY)
    assert not counted(PROVINCE)  # the province counts nothing of this owner
    assert counted(DEPARTMENT)
    # A claimed superior relation that the organisations do not bear out shares nothing.
    assert not engine.may_aggregate(
        OTHER_CITY, Relation.SUPERIOR, OWNER, "Resource", mode=Mode.NORMAL,
        record_facts={"shareable": True},
    )  # fmt: skip
