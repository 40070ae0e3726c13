"""Property: ``disclose`` never shows a field its group's decision does not allow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import (
    ENVELOPE_FIELDS,
    PUBLIC_MODELS,
    RECORD_TYPES,
    Caller,
    Disclosure,
    Mode,
    PolicyEngine,
    coarse_point,
    disclose,
    facts_of,
    quantity_band,
)
from policies.records import field_groups
from schema.enums import CapScope, OrgKind, SeverityLevel, ShelterStatus
from schema.fields import APPROXIMABLE, FieldGroup
from schema.geo import GeoPoint
from tests.policies.world import (
    ALL_SCOPES,
    DEPARTMENT,
    DISTRICT,
    NEIGHBOUR,
    OTHER_DISTRICT,
    OWNER,
    STRANGER,
)

# Two engines: one masks, the other is asked group by group as the oracle, so
# a cache bug in one does not hide behind the other.
MASKING = PolicyEngine()
ORACLE = PolicyEngine()
NOW = datetime(2025, 7, 1, tzinfo=UTC)

ORGS = [
    (OWNER.org, OrgKind.COMMUNITY, DISTRICT),
    (NEIGHBOUR.org, OrgKind.COMMUNITY, DISTRICT),
    (STRANGER.org, OrgKind.COMMUNITY, DISTRICT),
    (DEPARTMENT.org, OrgKind.DEPARTMENT, DISTRICT),
    ("110105000900", OrgKind.HUB, DISTRICT),
    ("110106000100", OrgKind.DEPARTMENT, OTHER_DISTRICT),
    ("public-web", OrgKind.PUBLIC, None),
]
PARTIES = [org for org, _, _ in ORGS] + ["110105001099"]


@st.composite
def callers(draw: st.DrawFn) -> Caller:
    org, kind, district = draw(st.sampled_from(ORGS))
    # Mostly every read scope, so that policies rather than scopes decide.
    scopes = draw(
        st.one_of(
            st.just(ALL_SCOPES),
            st.just(ALL_SCOPES - {"pii:read"}),
            st.frozensets(st.sampled_from(sorted(ALL_SCOPES | {"admin", "risk:flag"}))),
        )
    )
    return Caller(org, kind, scopes, "client", f"staff@{org}", district=district)


points = st.builds(
    GeoPoint.at,
    st.floats(min_value=-179.9, max_value=179.9),
    st.floats(min_value=-79.9, max_value=79.9),
)
locations = st.one_of(st.none(), points, points.map(lambda p: p.model_dump()))
counts = st.one_of(st.none(), st.integers(min_value=0, max_value=5000))
anything = st.one_of(st.none(), st.text(max_size=8), st.integers(), st.booleans())

_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "location": locations,
    "quantity": counts,
    "available": counts,
    "capacity": counts,
    "occupancy": counts,
    "affected_people": counts,
    # Facts lean towards the values that share most, where a mask bug would show.
    "shareable": st.one_of(st.just(True), st.booleans(), st.none()),
    "scope": st.one_of(st.just(CapScope.PUBLIC), st.sampled_from(CapScope), st.none()),
    "requester": st.one_of(st.none(), st.sampled_from(PARTIES)),
    "provider": st.one_of(st.none(), st.sampled_from(PARTIES)),
}


@st.composite
def records(draw: st.DrawFn, record_type: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"{record_type}:{OWNER.org}:x",
        "owner": OWNER.org,
        "version": draw(st.integers(min_value=1, max_value=9)),
        "created_at": NOW,
        "updated_at": NOW,
    }
    for name in PUBLIC_MODELS[record_type].model_fields:
        if name in record or name.endswith("_band"):
            continue
        if record_type == "Shelter" and name == "status":
            statuses = st.sampled_from(ShelterStatus)
            record[name] = draw(st.one_of(st.just(ShelterStatus.OPEN), statuses, st.none()))
        else:
            record[name] = draw(_FIELD_VALUES.get(name, anything))
    return record


def _band_of(record_type: str, record: dict[str, Any]) -> Any:
    if record_type == "Resource":
        available = record.get("available")
        return None if available is None else quantity_band(available)
    capacity, occupancy = record.get("capacity"), record.get("occupancy")
    if capacity is None or occupancy is None:
        return None
    return quantity_band(max(capacity - occupancy, 0))


def _coarse(value: Any) -> Any:
    if isinstance(value, GeoPoint):
        return coarse_point(value)
    return coarse_point(GeoPoint.model_validate(value)).model_dump()


@pytest.mark.parametrize("record_type", RECORD_TYPES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    caller=callers(),
    mode=st.sampled_from(Mode),
    purpose=st.sampled_from(["", "  ", "flood relief"]),
    level=st.one_of(st.none(), st.sampled_from(SeverityLevel)),
)
def test_every_disclosed_field_is_allowed_by_its_group(
    record_type: str,
    data: st.DataObject,
    caller: Caller,
    mode: Mode,
    purpose: str,
    level: SeverityLevel | None,
) -> None:
    record = data.draw(records(record_type))
    shown, reasons = disclose(
        record,
        record_type,
        caller,
        owner=OWNER,
        engine=MASKING,
        mode=mode,
        purpose=purpose,
        emergency_level=level,
    )

    def decision(group: FieldGroup) -> Disclosure:
        return ORACLE.decide(
            caller,
            OWNER.relation_of(caller),
            OWNER,
            record_type,
            group,
            mode=mode,
            purpose=purpose,
            emergency_level=level,
            record_facts=facts_of(record_type, record),
        ).disclosure

    if decision(FieldGroup.IDENTITY) is Disclosure.DENY:
        assert shown is None
        assert reasons == {}
        return
    assert shown is not None
    assert list(shown) == list(PUBLIC_MODELS[record_type].model_fields)
    groups = field_groups(record_type)
    for name, value in shown.items():
        if name in ENVELOPE_FIELDS:
            assert value == record[name]
            continue
        if name not in groups:  # a band derived from exact quantities
            if value is not None:
                assert decision(FieldGroup.QUANTITY_EXACT) is not Disclosure.DENY
                assert value == _band_of(record_type, record)
            continue
        group = groups[name]
        disclosure = decision(group)
        if value is None:
            if record.get(name) is not None and disclosure is not Disclosure.EXACT:
                assert name in reasons
            continue
        if disclosure is Disclosure.EXACT:
            assert value == record[name]
            assert name not in reasons
        else:
            # Only a coarse point is ever shown in place of an exact value.
            assert disclosure is Disclosure.APPROXIMATE, (name, disclosure)
            assert group in APPROXIMABLE
            assert name == "location"
            assert value == _coarse(record[name])
            assert reasons[name].startswith("approximated by policy ")
