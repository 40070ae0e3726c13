"""Field masks: what of one record a caller is shown, and why.

``disclose`` turns the owner's full record into what the caller may see:
fields of denied groups are null, approximated groups are replaced by their
approximate form, and every withheld or altered field gets a reason for the
GraphQL ``extensions``. ``explain`` shows the decision per field group.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from policies.approximate import coarse_point, quantity_band
from policies.caller import Caller, Relation
from policies.engine import Decision, Disclosure, FieldDecisions, Mode, Owner, PolicyEngine
from policies.records import BANDS, PUBLIC_MODELS, FactValue, facts_of, field_groups, typical_facts
from schema.enums import SeverityLevel
from schema.fields import FieldGroup
from schema.geo import GeoPoint
from schema.records import Band, RecordEnvelope

__all__ = ["ENVELOPE_FIELDS", "Explanation", "disclose", "disclose_page", "explain"]

ENVELOPE_FIELDS: Final = frozenset(RecordEnvelope.model_fields)
"""Kept on every visible record whatever the policy says: without them it cannot be referenced."""

Disclosed = tuple[dict[str, Any] | None, dict[str, str]]

# The location fields with an approximate form; any other location.exact
# field (a street address) cannot be coarsened and is hidden instead.
_POINT_FIELDS: Final = frozenset({"location"})


def _coarse_location(value: Any) -> Any:
    """The coarse form of a location, in the shape it came in."""
    if value is None:
        return None
    if isinstance(value, GeoPoint):
        return coarse_point(value)
    if isinstance(value, Mapping):
        return coarse_point(GeoPoint.model_validate(value)).model_dump()
    raise TypeError(f"a location must be a GeoPoint or a GeoJSON mapping, not {type(value)!r}")


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to mask every record that shares one set of decisions."""

    visible: bool
    fields: tuple[str, ...]  # every field of the public model, in order
    keep: tuple[str, ...]
    coarse: tuple[str, ...]
    band: Band | None
    reasons: Mapping[str, str]


def _no_approximate_form(decision: Decision) -> str:
    return (
        f"hidden: policy {', '.join(decision.policy_ids)} allows only an approximation,"
        " which this field does not have"
    )


@functools.lru_cache(maxsize=4096)
def _plan(decisions: FieldDecisions) -> _Plan:
    record_type = decisions.record_type
    groups = field_groups(record_type)
    fields = tuple(PUBLIC_MODELS[record_type].model_fields)
    keep: list[str] = []
    coarse: list[str] = []
    reasons: dict[str, str] = {}
    for name in fields:
        group = groups.get(name)
        if group is None:
            continue  # derived (bands), handled below
        if name in ENVELOPE_FIELDS:
            keep.append(name)
            continue
        decision = decisions[group]
        match decision.disclosure:
            case Disclosure.EXACT:
                keep.append(name)
            case Disclosure.DENY:
                reasons[name] = decision.reason
            case Disclosure.APPROXIMATE if group is FieldGroup.LOCATION_EXACT:
                if name in _POINT_FIELDS:
                    coarse.append(name)
                    reasons[name] = decision.reason
                else:
                    reasons[name] = _no_approximate_form(decision)
            case Disclosure.APPROXIMATE:
                # Exact figures are replaced by the record type's band, if it has one.
                reasons[name] = (
                    decision.reason if record_type in BANDS else _no_approximate_form(decision)
                )
    band = BANDS.get(record_type)
    if band is not None:
        quantity = decisions[FieldGroup.QUANTITY_EXACT]
        if not quantity.allowed:
            reasons[band.field] = quantity.reason
            band = None
    return _Plan(
        visible=decisions.visible,
        fields=fields,
        keep=tuple(keep),
        coarse=tuple(coarse),
        band=band,
        reasons=reasons,
    )


def _apply(plan: _Plan, record: Mapping[str, Any]) -> Disclosed:
    if not plan.visible:
        return None, {}
    shown: dict[str, Any] = dict.fromkeys(plan.fields)
    for name in plan.keep:
        shown[name] = record.get(name)
    for name in plan.coarse:
        shown[name] = _coarse_location(record.get(name))
    if plan.band is not None:
        count = plan.band.count(record)
        shown[plan.band.field] = None if count is None else quantity_band(count)
    return shown, dict(plan.reasons)


def disclose(
    record: Mapping[str, Any],
    record_type: str,
    caller: Caller,
    *,
    owner: Owner,
    engine: PolicyEngine,
    mode: Mode,
    purpose: str = "",
    emergency_level: SeverityLevel | None = None,
    relation: Relation | None = None,
) -> Disclosed:
    """What ``caller`` may see of one of ``owner``'s records (None: nothing), and why per field."""
    decisions = engine.decisions(
        caller,
        owner.relation_of(caller) if relation is None else relation,
        owner,
        record_type,
        mode=mode,
        purpose=purpose,
        emergency_level=emergency_level,
        record_facts=facts_of(record_type, record),
    )
    return _apply(_plan(decisions), record)


def disclose_page(
    records: Iterable[Mapping[str, Any]],
    record_type: str,
    caller: Caller,
    *,
    owner: Owner,
    engine: PolicyEngine,
    mode: Mode,
    purpose: str = "",
    emergency_level: SeverityLevel | None = None,
    relation: Relation | None = None,
) -> list[Disclosed]:
    """``disclose`` for each of many records of one owner and type, in order."""
    if relation is None:
        relation = owner.relation_of(caller)
    # Everything but the record facts is fixed for the page, so the plan for
    # each distinct set of facts is looked up once.
    plans: dict[tuple[FactValue, ...], _Plan] = {}
    shown: list[Disclosed] = []
    for record in records:
        facts = facts_of(record_type, record)
        key = tuple(facts.values())
        plan = plans.get(key)
        if plan is None:
            decisions = engine.decisions(
                caller,
                relation,
                owner,
                record_type,
                mode=mode,
                purpose=purpose,
                emergency_level=emergency_level,
                record_facts=facts,
            )
            plan = plans[key] = _plan(decisions)
        shown.append(_apply(plan, record))
    return shown


@dataclass(frozen=True, slots=True)
class Explanation:
    """The decision per field group for one caller, owner, record type and mode."""

    caller_org: str
    owner: str
    relation: Relation
    record_type: str
    mode: Mode
    facts: Mapping[str, FactValue]
    decisions: Mapping[FieldGroup, Decision]

    def rows(self) -> list[tuple[str, str, str]]:
        """(field group, exact|approximate|deny, deciding policy ids) for printing."""
        return [
            (group.value, decision.disclosure.value, ", ".join(decision.policy_ids) or "-")
            for group, decision in self.decisions.items()
        ]


def explain(
    caller: Caller,
    owner: Owner,
    record_type: str,
    mode: Mode,
    *,
    engine: PolicyEngine,
    purpose: str = "",
    emergency_level: SeverityLevel | None = None,
    record_facts: Mapping[str, FactValue] | None = None,
) -> Explanation:
    """What ``caller`` sees of ``owner``'s records of a type per field group, and why."""
    relation = owner.relation_of(caller)
    facts = dict(
        typical_facts(record_type, owner.org, caller.org) if record_facts is None else record_facts
    )
    decisions = engine.decisions(
        caller,
        relation,
        owner,
        record_type,
        mode=mode,
        purpose=purpose,
        emergency_level=emergency_level,
        record_facts=facts,
    )
    return Explanation(
        caller_org=caller.org,
        owner=owner.org,
        relation=relation,
        record_type=record_type,
        mode=Mode(mode),
        facts=facts,
        decisions=decisions.by_group,
    )
