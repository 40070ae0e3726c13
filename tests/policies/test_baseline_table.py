"""The baseline policy, cell by cell: caller × record × field group × mode against an explicit table.

Each cell is a string over the field groups in the order of ``GROUP_ORDER``:
``E`` exact, ``A`` approximate, ``-`` denied, ``.`` the record type has no
such fields. Each row gives the normal-mode and the emergency-mode string.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from policies import Caller, Disclosure, FactValue, Mode, PolicyEngine
from policies.records import groups_in
from schema.fields import FieldGroup
from tests.policies.world import (
    DEPARTMENT,
    DEPARTMENT_NO_PII,
    NEIGHBOUR,
    OTHER_DEPARTMENT,
    OWNER,
    PUBLIC,
    SELF,
    SELF_NO_SCOPES,
    STRANGER,
)

GROUP_ORDER = (
    FieldGroup.IDENTITY,  # I
    FieldGroup.STATUS,  # S
    FieldGroup.DESCRIPTION,  # D
    FieldGroup.QUANTITY_EXACT,  # Q
    FieldGroup.LOCATION_EXACT,  # L
    FieldGroup.CONTACT,  # C
    FieldGroup.PERSONAL,  # P
)
_LETTER = {Disclosure.EXACT: "E", Disclosure.APPROXIMATE: "A", Disclosure.DENY: "-"}
PURPOSE = "flood evacuation"


@dataclass(frozen=True)
class Audience:
    caller: Caller
    purpose: str = PURPOSE


AUDIENCES = {
    "self": Audience(SELF),
    "self-without-scopes": Audience(SELF_NO_SCOPES),
    "neighbour": Audience(NEIGHBOUR),
    "non-neighbour-community": Audience(STRANGER),
    "department": Audience(DEPARTMENT),
    "department-no-purpose": Audience(DEPARTMENT, purpose="   "),
    "department-without-pii": Audience(DEPARTMENT_NO_PII),
    "department-other-district": Audience(OTHER_DEPARTMENT),
    "public": Audience(PUBLIC),
}

OUTSIDERS = frozenset({"110105009998", "110105009999"})


def _facts(variant: str, caller: Caller) -> tuple[str, dict[str, FactValue]]:
    """The record type and facts of one record variant of the table."""
    variants: dict[str, tuple[str, dict[str, FactValue]]] = {
        "Incident": ("Incident", {}),
        "Resource/shareable": ("Resource", {"shareable": True}),
        "Resource/private": ("Resource", {"shareable": False}),
        "Shelter/open": ("Shelter", {"status": "open"}),
        "Shelter/closed": ("Shelter", {"status": "closed"}),
        "Volunteer": ("Volunteer", {}),
        "RiskFlag": ("RiskFlag", {}),
        "Alert/Public": ("Alert", {"scope": "Public"}),
        "Alert/Restricted": ("Alert", {"scope": "Restricted"}),
        "Alert/Private": ("Alert", {"scope": "Private"}),
        "AidRequest/party": ("AidRequest", {"parties": frozenset({OWNER.org, caller.org})}),
        "AidRequest/other": ("AidRequest", {"parties": OUTSIDERS}),
        "Sensor": ("Sensor", {"kind": "water_level"}),
    }
    return variants[variant]


def both(cell: str) -> tuple[str, str]:
    return (cell, cell)


#                           ISDQLCP
_SELF = {
    "Incident": both("EEEEE.."),
    "Resource/shareable": both("EEEEE.."),
    "Resource/private": both("EEEEE.."),
    "Shelter/open": both("EEEEE.."),
    "Shelter/closed": both("EEEEE.."),
    "Volunteer": both("EE....E"),
    "RiskFlag": both("EEE.E.."),
    "Alert/Public": both("EEE..E."),
    "Alert/Restricted": both("EEE..E."),
    "Alert/Private": both("EEE..E."),
    "AidRequest/party": both("EEEEE.."),
    "AidRequest/other": both("EEEEE.."),
    "Sensor": both("EEEEE.."),
}
_NOTHING = {
    "Incident": both("-----.."),
    "Resource/shareable": both("-----.."),
    "Resource/private": both("-----.."),
    "Shelter/open": both("-----.."),
    "Shelter/closed": both("-----.."),
    "Volunteer": both("--....-"),
    "RiskFlag": both("---.-.."),
    "Alert/Public": both("---..-."),
    "Alert/Restricted": both("---..-."),
    "Alert/Private": both("---..-."),
    "AidRequest/party": both("-----.."),
    "AidRequest/other": both("-----.."),
    "Sensor": both("-----.."),
}
# What anyone with the read scopes sees: open shelters and public alerts.
_PUBLIC = {
    **_NOTHING,
    "Shelter/open": both("EE--A.."),
    "Alert/Public": both("EEE..-."),
    "AidRequest/party": both("EEEEE.."),
}
_NEIGHBOUR = {
    **_PUBLIC,
    #                          normal     emergency
    "Resource/shareable": ("EEEAA..", "EEEEA.."),
    "Shelter/open": both("EEEAA.."),
    "Volunteer": both("EE....-"),
    # That a sensor is in alarm, and where to ~500 m; never its readings or rules.
    "Sensor": both("EE--A.."),
}
_DEPARTMENT = {
    **_PUBLIC,
    "Incident": both("EEEEE.."),
    "Resource/shareable": both("EEEEE.."),
    "Resource/private": both("EEEEE.."),
    "Shelter/open": both("EEEEE.."),
    "Shelter/closed": both("EEEEE.."),
    "Volunteer": ("EE....-", "EE....E"),
    "RiskFlag": both("EEE.E.."),
    "Alert/Public": both("EEE..E."),
    "Alert/Restricted": both("EEE..E."),
    "Sensor": both("EEEEE.."),
}
_DEPARTMENT_NO_PERSONAL = {**_DEPARTMENT, "Volunteer": both("EE....-")}

EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "self": _SELF,
    "self-without-scopes": _NOTHING,
    "neighbour": _NEIGHBOUR,
    "non-neighbour-community": _PUBLIC,
    "department": _DEPARTMENT,
    "department-no-purpose": _DEPARTMENT_NO_PERSONAL,
    "department-without-pii": _DEPARTMENT_NO_PERSONAL,
    "department-other-district": _PUBLIC,
    "public": _PUBLIC,
}

CELLS = [
    pytest.param(audience, variant, mode, id=f"{audience}-{variant}-{mode.value}")
    for audience, row in EXPECTED.items()
    for variant in row
    for mode in Mode
]


def _row(engine: PolicyEngine, audience: Audience, variant: str, mode: Mode) -> str:
    record_type, facts = _facts(variant, audience.caller)
    present = groups_in(record_type)
    letters = []
    for group in GROUP_ORDER:
        if group not in present:
            letters.append(".")
            continue
        decision = engine.decide(
            audience.caller,
            OWNER.relation_of(audience.caller),
            OWNER,
            record_type,
            group,
            mode=mode,
            purpose=audience.purpose,
            record_facts=facts,
        )
        letters.append(_LETTER[decision.disclosure])
    return "".join(letters)


def test_the_table_covers_every_audience_and_record_type() -> None:
    variants = {variant.split("/")[0] for row in EXPECTED.values() for variant in row}
    assert variants == {
        "Incident",
        "Resource",
        "Shelter",
        "Volunteer",
        "RiskFlag",
        "Alert",
        "AidRequest",
        "Sensor",
    }
    assert set(EXPECTED) == set(AUDIENCES)
    assert all(set(row) == set(_SELF) for row in EXPECTED.values())


@pytest.mark.parametrize(("audience", "variant", "mode"), CELLS)
def test_baseline_cell(engine: PolicyEngine, audience: str, variant: str, mode: Mode) -> None:
    normal, emergency = EXPECTED[audience][variant]
    expected = emergency if mode is Mode.EMERGENCY else normal
    assert _row(engine, AUDIENCES[audience], variant, mode) == expected
