"""Loading policies: invalid files are refused with POLICY_INVALID; an owner's file widens or narrows."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import (
    BASELINE_PATH,
    Decision,
    Disclosure,
    Mode,
    PolicyEngine,
    PolicyError,
)
from schema.enums import SeverityLevel
from schema.errors import LinliError
from schema.fields import FieldGroup
from tests.policies.world import DEPARTMENT, NEIGHBOUR, OWNER, SELF, STRANGER


def _policy_file(tmp_path: Path, text: str, name: str = "owner.cedar") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _refused(path: Path | None, *, schema: Path | None = None) -> PolicyError:
    with pytest.raises(PolicyError) as raised:
        PolicyEngine(path) if schema is None else PolicyEngine(path, schema=schema)
    error = raised.value
    assert isinstance(error, LinliError)
    assert error.code == "POLICY_INVALID"
    assert error.extensions["code"] == "POLICY_INVALID"
    return error


def test_a_syntax_error_is_refused_naming_the_file_and_cedars_reason(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        '@id("broken")\npermit (principal, action, resource) when { context.mode == };\n',
    )
    error = _refused(path)
    assert error.file == str(path)
    assert error.message == f"{path}: syntax error: unexpected token `}}`"
    assert error.details == {"file": str(path), "reason": "syntax error: unexpected token `}`"}


def test_a_policy_naming_an_attribute_the_type_lacks_is_refused(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        '@id("incidents.shareable")\n'
        'permit (principal, action == Linli::Action::"read_exact", resource is Linli::Incident)\n'
        "when { resource.shareable };\n",
    )
    error = _refused(path)
    assert error.file == str(path)
    assert error.reason.startswith("does not validate against the schema: ")
    assert "policy 'incidents.shareable'" in error.reason
    assert "attribute `shareable` on entity type `Linli::Incident` not found" in error.reason


def test_a_policy_that_does_not_type_check_is_refused(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        '@id("fine")\n'
        "forbid (principal, action, resource is Linli::Resource) when { !resource.shareable };\n"
        '@id("level.as.text")\n'
        'permit (principal, action == Linli::Action::"read_exact", resource)\n'
        'when { context has emergency_level && context.emergency_level == "I" };\n',
    )
    error = _refused(path)
    assert "policy 'level.as.text'" in error.reason
    assert "'fine'" not in error.reason


def test_an_unknown_action_is_refused(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        '@id("write")\npermit (principal, action == Linli::Action::"write", resource);\n',
    )
    assert "policy 'write'" in _refused(path).reason


def test_a_policy_without_an_id_is_refused(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        '@id("first")\nforbid (principal, action, resource is Linli::Volunteer);\n'
        "forbid (principal, action, resource is Linli::Incident);\n",
    )
    assert _refused(path).reason == (
        'policy #2 (forbid) has no @id("...") annotation;'
        " every policy needs one so that decisions can be explained"
    )


def test_an_id_already_used_by_the_baseline_is_refused(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path, '@id("self.everything")\nforbid (principal, action, resource is Linli::Alert);\n'
    )
    assert _refused(path).reason == (
        f"policy id 'self.everything' is already used in {BASELINE_PATH}"
    )


def test_templates_are_refused(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path, '@id("template")\npermit (principal == ?principal, action, resource);\n'
    )
    assert "templates are not supported" in _refused(path).reason


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.cedar"
    error = _refused(path)
    assert error.file == str(path)
    assert error.reason.startswith("cannot be read: ")


def test_an_invalid_schema_is_refused(tmp_path: Path) -> None:
    schema = _policy_file(
        tmp_path, "namespace Linli { entity Organisation = { kind: Strin }; }", "bad.cedarschema"
    )
    error = _refused(None, schema=schema)
    assert error.file == str(schema)
    assert error.reason == "is not a valid Cedar schema: failed to resolve type: Strin"


def test_the_baseline_loads_alone_and_every_policy_has_an_id() -> None:
    engine = PolicyEngine()
    assert engine.files == (str(BASELINE_PATH),)
    assert len(engine.policy_ids) == len(set(engine.policy_ids)) == 31
    assert "guard.personal-data" in engine.policy_ids


def test_an_owner_file_narrows_sharing_and_is_named_in_the_decision(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        "// We tell neighbours what we have, not what we wrote about it.\n"
        '@id("owner.no-descriptions-for-neighbours")\n'
        'forbid (principal, action in Linli::Action::"read", resource is Linli::Resource)\n'
        'when { context.relation == "neighbour" && resource.group == "description" };\n',
    )
    engine = PolicyEngine(path)
    assert engine.files == (str(BASELINE_PATH), str(path))

    def decide(group: FieldGroup) -> Decision:
        return engine.decide(
            NEIGHBOUR,
            OWNER.relation_of(NEIGHBOUR),
            OWNER,
            "Resource",
            group,
            mode=Mode.NORMAL,
            record_facts={"shareable": True},
        )

    description = decide(FieldGroup.DESCRIPTION)
    assert description.disclosure is Disclosure.DENY
    assert description.policy_ids == ("owner.no-descriptions-for-neighbours",)
    assert description.reason == "hidden by policy owner.no-descriptions-for-neighbours"
    assert decide(FieldGroup.IDENTITY).disclosure is Disclosure.EXACT
    assert decide(FieldGroup.QUANTITY_EXACT).disclosure is Disclosure.APPROXIMATE


def test_forbidding_the_approximation_hides_the_exact_value_too(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        '@id("owner.no-locations")\n'
        'forbid (principal, action == Linli::Action::"read_approx", resource is Linli::Shelter)\n'
        'when { resource.group == "location.exact" };\n',
    )
    engine = PolicyEngine(path)
    for caller in (SELF, NEIGHBOUR, DEPARTMENT):
        decision = engine.decide(
            caller,
            OWNER.relation_of(caller),
            OWNER,
            "Shelter",
            FieldGroup.LOCATION_EXACT,
            mode=Mode.EMERGENCY,
            record_facts={"status": "open"},
        )
        assert decision.disclosure is Disclosure.DENY, caller.org
        assert decision.policy_ids == ("owner.no-locations",)


def test_an_owner_file_widens_sharing_by_emergency_level(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        "// In a level I or II emergency our neighbours see our incidents.\n"
        '@id("owner.incidents-to-neighbours-in-severe-emergencies")\n'
        'permit (principal, action == Linli::Action::"read_exact", resource is Linli::Incident)\n'
        "when {\n"
        '  context.relation == "neighbour" &&\n'
        '  context.mode == "emergency" &&\n'
        "  context has emergency_level && context.emergency_level <= 2\n"
        "};\n",
    )
    engine = PolicyEngine(path)

    def incidents(mode: Mode, level: SeverityLevel | None) -> Disclosure:
        return engine.decide(
            NEIGHBOUR,
            OWNER.relation_of(NEIGHBOUR),
            OWNER,
            "Incident",
            FieldGroup.IDENTITY,
            mode=mode,
            emergency_level=level,
        ).disclosure

    assert incidents(Mode.EMERGENCY, SeverityLevel.I) is Disclosure.EXACT
    assert incidents(Mode.EMERGENCY, SeverityLevel.II) is Disclosure.EXACT
    assert incidents(Mode.EMERGENCY, SeverityLevel.III) is Disclosure.DENY
    assert incidents(Mode.EMERGENCY, None) is Disclosure.DENY
    # A level without a declared emergency means nothing.
    assert incidents(Mode.NORMAL, SeverityLevel.I) is Disclosure.DENY
    # Strangers are not neighbours, whatever the level.
    stranger = engine.decide(
        STRANGER,
        OWNER.relation_of(STRANGER),
        OWNER,
        "Incident",
        FieldGroup.IDENTITY,
        mode=Mode.EMERGENCY,
        emergency_level=SeverityLevel.I,
    )
    assert stranger.disclosure is Disclosure.DENY


def test_an_owner_file_cannot_lift_a_district_guard(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        '@id("owner.volunteer-phones-to-neighbours")\n'
        'permit (principal, action == Linli::Action::"read_exact", resource is Linli::Volunteer)\n'
        'when { context.relation == "neighbour" };\n',
    )
    engine = PolicyEngine(path)
    personal = engine.decide(
        NEIGHBOUR,
        OWNER.relation_of(NEIGHBOUR),
        OWNER,
        "Volunteer",
        FieldGroup.PERSONAL,
        mode=Mode.EMERGENCY,
        purpose="finding a driver",
    )
    assert personal.disclosure is Disclosure.DENY
    assert personal.policy_ids == ("guard.personal-data",)


def test_an_approximation_of_a_group_without_one_shows_nothing(tmp_path: Path) -> None:
    path = _policy_file(
        tmp_path,
        '@id("owner.approximate-incident-identity")\n'
        'permit (principal, action == Linli::Action::"read_approx", resource is Linli::Incident)\n'
        'when { context.relation == "neighbour" && resource.group == "identity" };\n',
    )
    decision = PolicyEngine(path).decide(
        NEIGHBOUR,
        OWNER.relation_of(NEIGHBOUR),
        OWNER,
        "Incident",
        FieldGroup.IDENTITY,
        mode=Mode.NORMAL,
    )
    assert decision.disclosure is Disclosure.DENY
    assert decision.reason == (
        "hidden: policy owner.approximate-incident-identity allows only an approximation,"
        " and identity has none"
    )
