"""The engine's contract: the decision cache, fail-closed relation claims, and bad arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policies import (
    SCHEMA_PATH,
    Caller,
    Decision,
    Disclosure,
    Mode,
    PolicyEngine,
    PolicyEvaluationError,
    Relation,
    disclose,
    disclose_page,
    explain,
)
from schema.enums import OrgKind, ResourceStatus, SeverityLevel, ShelterStatus
from schema.fields import FieldGroup
from tests.policies.world import (
    DEPARTMENT,
    NEIGHBOUR,
    OWNER,
    READ_SCOPES,
    SELF,
    STRANGER,
    caller,
)


def _resources(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"Resource:{OWNER.org}:r{i}",
            "owner": OWNER.org,
            "version": 1,
            "kind": "portable_generator",
            "name": f"generator {i}",
            "quantity": i,
            "available": i // 2,
            "unit": "pcs",
            "status": ResourceStatus.AVAILABLE,
            "shareable": i % 3 != 0,
            "description": "",
        }
        for i in range(count)
    ]


def test_1000_records_cost_one_batch_per_distinct_fact() -> None:
    engine = PolicyEngine()
    page = _resources(1000)
    shown = [
        disclose(record, "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.NORMAL)
        for record in page
    ]
    # Two distinct facts (shareable or not) × five field groups × two actions.
    assert engine.evaluations == 2 * 5 * 2
    assert engine.cache_hits == 1000 - 2
    assert sum(record is not None for record, _ in shown) == sum(r["shareable"] for r in page)

    # Another client of the same organisation shares the decisions.
    same_org = caller(NEIGHBOUR.org, OrgKind.COMMUNITY, NEIGHBOUR.scopes, client_id="other")
    for record in page:
        disclose(record, "Resource", same_org, owner=OWNER, engine=engine, mode=Mode.NORMAL)
    assert engine.evaluations == 20


def test_a_page_asks_the_engine_once_per_distinct_fact() -> None:
    engine = PolicyEngine()
    page = _resources(1000)
    shown = disclose_page(page, "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.NORMAL)
    assert (engine.evaluations, engine.cache_hits) == (20, 0)
    again = disclose_page(page, "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.NORMAL)
    assert (engine.evaluations, engine.cache_hits) == (20, 2)
    one_by_one = [
        disclose(record, "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.NORMAL)
        for record in page
    ]
    assert shown == again == one_by_one


@pytest.mark.parametrize(
    ("change", "kwargs"),
    [
        ("mode", {"mode": Mode.EMERGENCY}),
        ("purpose", {"purpose": "flood"}),
        ("scopes", {"caller": caller(NEIGHBOUR.org, OrgKind.COMMUNITY, frozenset())}),
        ("caller", {"caller": STRANGER}),
        ("relation", {"relation": Relation.PUBLIC}),
    ],
)
def test_every_input_of_a_decision_is_part_of_the_cache_key(
    change: str, kwargs: dict[str, Any]
) -> None:
    engine = PolicyEngine()
    base: dict[str, Any] = {"caller": NEIGHBOUR, "mode": Mode.NORMAL, "purpose": ""}
    record = _resources(2)[1]
    disclose_page([record], "Resource", owner=OWNER, engine=engine, **base)
    assert engine.evaluations == 10
    disclose_page([record], "Resource", owner=OWNER, engine=engine, **(base | kwargs))
    assert engine.evaluations == 20, change


def test_the_emergency_level_is_part_of_the_cache_key_only_in_an_emergency() -> None:
    engine = PolicyEngine()

    def decide(mode: Mode, level: SeverityLevel | None) -> None:
        engine.decide(
            DEPARTMENT,
            Relation.DISTRICT,
            OWNER,
            "Volunteer",
            FieldGroup.PERSONAL,
            mode=mode,
            purpose="evacuation",
            emergency_level=level,
        )

    decide(Mode.NORMAL, None)
    decide(Mode.NORMAL, SeverityLevel.I)
    assert engine.evaluations == 3 * 2  # Volunteer has three groups
    decide(Mode.EMERGENCY, SeverityLevel.I)
    decide(Mode.EMERGENCY, SeverityLevel.II)
    assert engine.evaluations == 3 * 2 * 3


def test_shelters_cost_one_batch_per_status() -> None:
    engine = PolicyEngine()
    statuses = list(ShelterStatus) * 250
    shelters = [
        {"id": f"Shelter:{OWNER.org}:s{i}", "owner": OWNER.org, "status": status}
        for i, status in enumerate(statuses)
    ]
    disclose_page(shelters, "Shelter", STRANGER, owner=OWNER, engine=engine, mode=Mode.NORMAL)
    assert engine.evaluations == len(ShelterStatus) * 5 * 2


def test_a_full_cache_forgets_its_oldest_decision() -> None:
    engine = PolicyEngine(cache_size=1)
    record = _resources(2)[1]
    for mode in (Mode.NORMAL, Mode.EMERGENCY, Mode.NORMAL):
        disclose_page([record], "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=mode)
    assert engine.evaluations == 30
    engine.clear_cache()
    disclose_page([record], "Resource", NEIGHBOUR, owner=OWNER, engine=engine, mode=Mode.NORMAL)
    assert engine.evaluations == 40


@pytest.mark.parametrize(
    ("who", "claimed"),
    [
        (NEIGHBOUR, Relation.SELF),
        (NEIGHBOUR, Relation.DISTRICT),
        (STRANGER, Relation.NEIGHBOUR),
        (caller("110106001002", OrgKind.COMMUNITY, district="110106"), Relation.DISTRICT),
        (DEPARTMENT, Relation.SELF),
        (DEPARTMENT, Relation.NEIGHBOUR),
    ],
)
def test_a_wrong_relation_claim_shares_nothing_beyond_the_public(
    engine: PolicyEngine, who: Caller, claimed: Relation
) -> None:
    for record_type, facts in (("Resource", {"shareable": True}), ("Incident", {})):
        decision = engine.decide(
            who,
            claimed,
            OWNER,
            record_type,
            FieldGroup.IDENTITY,
            mode=Mode.EMERGENCY,
            purpose="x",
            record_facts=facts,
        )
        assert decision.disclosure is Disclosure.DENY, record_type


def test_explain_names_the_deciding_policies(engine: PolicyEngine) -> None:
    explanation = explain(NEIGHBOUR, OWNER, "Resource", Mode.NORMAL, engine=engine)
    assert explanation.relation is Relation.NEIGHBOUR
    assert explanation.facts == {"shareable": True}
    assert explanation.rows() == [
        ("identity", "exact", "neighbour.shareable-resources"),
        ("status", "exact", "neighbour.shareable-resources"),
        ("description", "exact", "neighbour.shareable-resources"),
        ("quantity.exact", "approximate", "neighbour.shareable-resources.approximate"),
        ("location.exact", "approximate", "neighbour.shareable-resources.approximate"),
    ]
    no_scopes = caller(NEIGHBOUR.org, OrgKind.COMMUNITY, READ_SCOPES - {"resources:read"})
    assert explain(no_scopes, OWNER, "Resource", Mode.EMERGENCY, engine=engine).rows() == [
        (group, "deny", "scope.resources")
        for group in ("identity", "status", "description", "quantity.exact", "location.exact")
    ]
    private = explain(
        NEIGHBOUR,
        OWNER,
        "Resource",
        Mode.NORMAL,
        engine=engine,
        record_facts={"shareable": False},
    )
    assert {decision.reason for decision in private.decisions.values()} == {
        "hidden: no policy shares it"
    }


def test_bad_arguments_are_refused(engine: PolicyEngine) -> None:
    def decide(record_type: str, group: FieldGroup, facts: dict[str, Any]) -> None:
        engine.decide(
            NEIGHBOUR,
            Relation.NEIGHBOUR,
            OWNER,
            record_type,
            group,
            mode=Mode.NORMAL,
            record_facts=facts,
        )

    with pytest.raises(ValueError, match="unknown record type 'Pony'"):
        decide("Pony", FieldGroup.IDENTITY, {})
    with pytest.raises(ValueError, match="Resource decisions need the record fact 'shareable'"):
        decide("Resource", FieldGroup.IDENTITY, {})
    with pytest.raises(ValueError, match="record fact 'shareable' must be a bool, not str"):
        decide("Resource", FieldGroup.IDENTITY, {"shareable": "yes"})
    with pytest.raises(ValueError, match=r"Volunteer has no location\.exact fields"):
        decide("Volunteer", FieldGroup.LOCATION_EXACT, {})


def test_a_policy_that_fails_at_run_time_hides_rather_than_shares(tmp_path: Path) -> None:
    # Cedar skips a policy that errors; were it a forbid, skipping would share.
    path = tmp_path / "owner.cedar"
    path.write_text(
        '@id("owner.overflowing-forbid")\n'
        'forbid (principal, action in Linli::Action::"read", resource is Linli::Resource)\n'
        "when { context has emergency_level &&"
        " context.emergency_level * 9223372036854775807 > 0 };\n",
        encoding="utf-8",
    )
    engine = PolicyEngine(path)

    def identity(level: SeverityLevel | None) -> Decision:
        return engine.decide(
            SELF,
            Relation.SELF,
            OWNER,
            "Resource",
            FieldGroup.IDENTITY,
            mode=Mode.EMERGENCY,
            emergency_level=level,
            record_facts={"shareable": True},
        )

    assert identity(None).disclosure is Disclosure.EXACT
    failed = identity(SeverityLevel.II)
    assert failed.disclosure is Disclosure.DENY
    assert failed.reason == "hidden: a policy failed to evaluate"


def test_a_request_cedar_cannot_evaluate_is_an_error_not_a_denial(tmp_path: Path) -> None:
    schema = tmp_path / "schema.cedarschema"
    schema.write_text(
        SCHEMA_PATH.read_text(encoding="utf-8").replace(
            "relation: String,", "relation: String,\n    weather: String,"
        ),
        encoding="utf-8",
    )
    engine = PolicyEngine(schema=schema)
    with pytest.raises(PolicyEvaluationError) as raised:
        engine.decide(SELF, Relation.SELF, OWNER, "Incident", FieldGroup.IDENTITY, mode=Mode.NORMAL)
    assert raised.value.code == "POLICY_EVALUATION_FAILED"
    assert "weather" in raised.value.message
