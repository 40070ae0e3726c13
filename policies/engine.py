"""The policy engine: Cedar policies decide, per field group, exact, approximate or deny.

A request to Cedar is one (caller organisation, owner, record type, field
group) with the per-request context (mode, emergency level, scopes, purpose,
relation) and the few per-record facts policies may look at. Decisions are
cached on exactly those inputs, so a page of records that agree on their
facts costs one batch of Cedar requests, not one per record.
"""

from __future__ import annotations

import enum
import json
import logging
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import cedarpy

from policies.caller import Caller, Relation, relation_of, superior_divisions
from policies.errors import PolicyError, PolicyEvaluationError
from policies.records import FACT_TYPES, RECORD_FACTS, FactValue, cedar_schema, groups_in
from schema.enums import OrgKind, SeverityLevel
from schema.fields import APPROXIMABLE, FieldGroup

__all__ = [
    "BASELINE_PATH",
    "SCHEMA_PATH",
    "Decision",
    "Disclosure",
    "FieldDecisions",
    "Mode",
    "Owner",
    "PolicyEngine",
]

log = logging.getLogger(__name__)

CEDAR_DIR: Final = Path(__file__).with_name("cedar")
SCHEMA_PATH: Final = CEDAR_DIR / "schema.cedarschema"
BASELINE_PATH: Final = CEDAR_DIR / "baseline.cedar"

_NS: Final = "Linli"
_READ_EXACT: Final = {"type": f"{_NS}::Action", "id": "read_exact"}
_READ_APPROX: Final = {"type": f"{_NS}::Action", "id": "read_approx"}
_READ_AGGREGATE: Final = {"type": f"{_NS}::Action", "id": "read_aggregate"}

# Level I is the most severe (特别重大), so "level <= 2" reads "level II or worse".
_LEVELS: Final[Mapping[SeverityLevel, int]] = MappingProxyType(
    {SeverityLevel.I: 1, SeverityLevel.II: 2, SeverityLevel.III: 3, SeverityLevel.IV: 4}
)


class Mode(enum.StrEnum):
    """Whether an emergency is declared for the owner's area."""

    NORMAL = "normal"
    EMERGENCY = "emergency"


class Disclosure(enum.StrEnum):
    """How much of a field group a caller may see."""

    EXACT = "exact"
    APPROXIMATE = "approximate"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one field group, with the ``@id`` of the policies that decided it."""

    disclosure: Disclosure
    policy_ids: tuple[str, ...]
    reason: str

    @property
    def allowed(self) -> bool:
        """Whether the caller sees anything of the group."""
        return self.disclosure is not Disclosure.DENY


@dataclass(frozen=True, eq=False, slots=True)
class FieldDecisions:
    """The decisions for every field group of one record type, for one cache key.

    The engine hands out one instance per cache key, so instances compare by
    identity and can key a cache of their own (``policies.mask`` does).
    """

    record_type: str
    relation: Relation
    by_group: Mapping[FieldGroup, Decision]

    def __getitem__(self, group: FieldGroup) -> Decision:
        try:
            return self.by_group[group]
        except KeyError:
            raise ValueError(f"{self.record_type} has no {group.value} fields") from None

    def __iter__(self) -> Iterator[FieldGroup]:
        return iter(self.by_group)

    @property
    def visible(self) -> bool:
        """Whether the caller may know the record exists (its identity group is not denied)."""
        return self.by_group[FieldGroup.IDENTITY].allowed


@dataclass(frozen=True, slots=True)
class Owner:
    """The organisation whose data is read, as its policies see it."""

    org: str
    kind: OrgKind
    district: str | None = None
    neighbours: frozenset[str] = frozenset()

    def relation_of(self, caller: Caller) -> Relation:
        """The relation of ``caller`` to this owner."""
        return relation_of(
            caller, owner=self.org, owner_district=self.district or "", neighbours=self.neighbours
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), f"cannot be read: {exc}") from None


def _load_schema(path: Path | None) -> cedarpy.Schema:
    # None: the schema of every registered record type, as generated (the file in
    # cedar/ is its committed copy; a type added by another package is only here).
    text = cedar_schema() if path is None else _read(path)
    try:
        return cedarpy.Schema.from_str(text)
    except ValueError as exc:
        raise PolicyError(str(path or SCHEMA_PATH), f"is not a valid Cedar schema: {exc}") from None


def _policy_ids(file: str, text: str) -> list[str]:
    """The ``@id`` of every policy in ``text``, refusing syntax errors and unnamed policies."""
    try:
        est = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as exc:
        raise PolicyError(file, f"syntax error: {exc}") from None
    if est.get("templates"):
        raise PolicyError(file, "policy templates are not supported; write static policies")
    static: dict[str, Any] = est.get("staticPolicies", {})
    ids: list[str] = []
    # Cedar numbers policies policy0, policy1, ... in file order.
    for position, name in enumerate(sorted(static, key=lambda n: int(n.removeprefix("policy")))):
        policy_id = static[name].get("annotations", {}).get("id")
        if not policy_id:
            raise PolicyError(
                file,
                f'policy #{position + 1} ({static[name]["effect"]}) has no @id("...") annotation;'
                " every policy needs one so that decisions can be explained",
            )
        if policy_id in ids:
            raise PolicyError(file, f"policy id {policy_id!r} is used twice")
        ids.append(policy_id)
    return ids


def _validate(file: str, text: str, schema: cedarpy.Schema) -> None:
    result = cedarpy.validate_policies(text, schema)
    if result.validation_passed:
        return
    names: dict[str, str] = result.id_annotations_by_policy_id
    problems = [
        f"policy {names.get(e.policy_id, e.policy_id)!r}: {e.error}" if e.policy_id else e.error
        for e in result.errors
    ]
    raise PolicyError(file, "does not validate against the schema: " + "; ".join(problems))


def _join(ids: tuple[str, ...]) -> str:
    return ", ".join(ids)


_CacheKey = tuple[Any, ...]


class PolicyEngine:
    """The district baseline plus an optional owner's policy file, with a decision cache.

    One engine serves one owner's data (a node holds one): the owner's file
    applies to every decision the engine makes.
    """

    def __init__(
        self,
        owner_policy: str | PathLike[str] | None = None,
        *,
        baseline: str | PathLike[str] = BASELINE_PATH,
        schema: str | PathLike[str] | None = None,
        cache_size: int = 4096,
    ) -> None:
        self._schema = _load_schema(None if schema is None else Path(schema))
        files = [Path(baseline)] + ([Path(owner_policy)] if owner_policy is not None else [])
        ids_by_file: dict[str, str] = {}
        policy_set: cedarpy.PolicySet | None = None
        for path in files:
            text = _read(path)
            file = str(path)
            ids = _policy_ids(file, text)
            _validate(file, text, self._schema)
            for policy_id in ids:
                if policy_id in ids_by_file:
                    raise PolicyError(
                        file, f"policy id {policy_id!r} is already used in {ids_by_file[policy_id]}"
                    )
                ids_by_file[policy_id] = file
            # with_added_str renumbers positional ids; the @id annotations survive.
            policy_set = (
                cedarpy.PolicySet.from_str(text)
                if policy_set is None
                else policy_set.with_added_str(text)
            )
        assert policy_set is not None  # the baseline is always loaded
        self._policies = policy_set
        self._ids_by_file = ids_by_file
        self.files: tuple[str, ...] = tuple(str(p) for p in files)
        self._cache: OrderedDict[_CacheKey, FieldDecisions] = OrderedDict()
        self._cache_size = cache_size
        self._aggregates: dict[_CacheKey, bool] = {}
        self._evaluations = 0
        self._cache_hits = 0

    @property
    def policy_ids(self) -> tuple[str, ...]:
        """The ``@id`` of every loaded policy, baseline first."""
        return tuple(self._ids_by_file)

    @property
    def evaluations(self) -> int:
        """How many Cedar requests the engine has evaluated (cache hits cost none)."""
        return self._evaluations

    @property
    def cache_hits(self) -> int:
        """How many decisions were answered from the cache."""
        return self._cache_hits

    def clear_cache(self) -> None:
        """Forget every cached decision.

        Never needed for correctness: every input of a decision, the mode and
        the owner's neighbours included, is part of the cache key.
        """
        self._cache.clear()

    def decide(
        self,
        caller: Caller,
        relation: Relation,
        owner: Owner,
        record_type: str,
        field_group: FieldGroup,
        *,
        mode: Mode,
        purpose: str = "",
        emergency_level: SeverityLevel | None = None,
        record_facts: Mapping[str, FactValue] | None = None,
    ) -> Decision:
        """Exact, approximate or deny for one field group of ``owner``'s records of a type."""
        decisions = self.decisions(
            caller,
            relation,
            owner,
            record_type,
            mode=mode,
            purpose=purpose,
            emergency_level=emergency_level,
            record_facts=record_facts,
        )
        return decisions[FieldGroup(field_group)]

    def decisions(
        self,
        caller: Caller,
        relation: Relation,
        owner: Owner,
        record_type: str,
        *,
        mode: Mode,
        purpose: str = "",
        emergency_level: SeverityLevel | None = None,
        record_facts: Mapping[str, FactValue] | None = None,
    ) -> FieldDecisions:
        """The decisions for every field group of a record type, cached."""
        groups = groups_in(record_type)
        mode = Mode(mode)
        relation = Relation(relation)
        purpose = purpose.strip()
        # A level outside an emergency means nothing; keeping it out of the key
        # keeps normal-mode reads on one cache entry.
        level = (
            _LEVELS[SeverityLevel(emergency_level)]
            if mode is Mode.EMERGENCY and emergency_level is not None
            else None
        )
        facts = _facts(record_type, record_facts or {})
        key: _CacheKey = (
            caller.org,
            caller.org_kind,
            caller.district,
            caller.scopes,
            relation,
            owner,
            record_type,
            mode,
            purpose,
            level,
            facts,
        )
        cached = self._cache.get(key)
        if cached is not None:
            self._cache_hits += 1
            self._cache.move_to_end(key)
            return cached
        decided = self._evaluate(
            caller, relation, owner, record_type, groups, mode, purpose, level, facts
        )
        self._cache[key] = decided
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return decided

    def may_aggregate(
        self,
        caller: Caller,
        relation: Relation,
        owner: Owner,
        record_type: str,
        *,
        mode: Mode,
        purpose: str = "",
        emergency_level: SeverityLevel | None = None,
        record_facts: Mapping[str, FactValue] | None = None,
    ) -> bool:
        """Whether ``owner``'s records of the type (with these facts) count in the caller's totals.

        Cedar's ``read_aggregate`` on the ``identity`` group; cached like ``decisions``.
        """
        mode, relation = Mode(mode), Relation(relation)
        level = (
            _LEVELS[SeverityLevel(emergency_level)]
            if mode is Mode.EMERGENCY and emergency_level is not None
            else None
        )
        facts = _facts(record_type, record_facts or {})
        key: _CacheKey = (
            "aggregate", caller.org, caller.org_kind, caller.district, caller.scopes, relation,
            owner, record_type, mode, purpose.strip(), level, facts,
        )  # fmt: skip
        cached = self._aggregates.get(key)
        if cached is not None:
            self._cache_hits += 1
            return cached
        group = FieldGroup.IDENTITY
        context: dict[str, Any] = {
            "mode": mode.value,
            "scopes": sorted(caller.scopes),
            "purpose": purpose.strip(),
            "relation": relation.value,
        }
        if level is not None:
            context["emergency_level"] = level
        request = {
            "principal": _org_uid(caller.org),
            "action": _READ_AGGREGATE,
            "resource": _resource_uid(owner, record_type, group),
            "context": context,
        }
        entities = _entities(caller, owner, record_type, (group,), facts)
        (result,) = cedarpy.is_authorized_batch([request], self._policies, entities, self._schema)
        self._evaluations += 1
        # A policy Cedar skipped at run time could be a forbid: fail closed.
        allowed = bool(result.allowed) and not result.diagnostics.errors
        if len(self._aggregates) >= self._cache_size:
            self._aggregates.clear()
        self._aggregates[key] = allowed
        return allowed

    def _evaluate(
        self,
        caller: Caller,
        relation: Relation,
        owner: Owner,
        record_type: str,
        groups: tuple[FieldGroup, ...],
        mode: Mode,
        purpose: str,
        level: int | None,
        facts: tuple[tuple[str, FactValue], ...],
    ) -> FieldDecisions:
        entities = _entities(caller, owner, record_type, groups, facts)
        context: dict[str, Any] = {
            "mode": mode.value,
            "scopes": sorted(caller.scopes),
            "purpose": purpose,
            "relation": relation.value,
        }
        if level is not None:
            context["emergency_level"] = level
        principal = _org_uid(caller.org)
        requests = [
            {
                "principal": principal,
                "action": action,
                "resource": _resource_uid(owner, record_type, group),
                "context": context,
            }
            for group in groups
            for action in (_READ_EXACT, _READ_APPROX)
        ]
        results = cedarpy.is_authorized_batch(requests, self._policies, entities, self._schema)
        self._evaluations += len(requests)
        by_group = {
            group: _decision(record_type, group, results[2 * i], results[2 * i + 1])
            for i, group in enumerate(groups)
        }
        return FieldDecisions(record_type, relation, MappingProxyType(by_group))


def _facts(record_type: str, given: Mapping[str, FactValue]) -> tuple[tuple[str, FactValue], ...]:
    """The facts the record type's policies may use, checked, in a fixed order for the cache key."""
    facts: list[tuple[str, FactValue]] = []
    for name in RECORD_FACTS[record_type]:
        if name not in given:
            raise ValueError(f"{record_type} decisions need the record fact {name!r}")
        value = given[name]
        expected = FACT_TYPES[name]
        if not isinstance(value, expected):
            raise ValueError(
                f"record fact {name!r} must be a {expected.__name__}, not {type(value).__name__}"
            )
        facts.append((name, str(value) if expected is str else value))
    return tuple(facts)


def _org_uid(org: str) -> dict[str, str]:
    return {"type": f"{_NS}::Organisation", "id": org}


def _entity_ref(org: str) -> dict[str, Any]:
    return {"__entity": _org_uid(org)}


def _resource_uid(owner: Owner, record_type: str, group: FieldGroup) -> dict[str, str]:
    return {"type": f"{_NS}::{record_type}", "id": f"{owner.org}/{group.value}"}


def _entities(
    caller: Caller,
    owner: Owner,
    record_type: str,
    groups: tuple[FieldGroup, ...],
    facts: tuple[tuple[str, FactValue], ...],
) -> list[dict[str, Any]]:
    owner_attrs: dict[str, Any] = {
        "kind": owner.kind.value,
        "neighbours": [_entity_ref(n) for n in sorted(owner.neighbours)],
    }
    if owner.district:
        owner_attrs["district"] = owner.district
        owner_attrs["superiors"] = list(superior_divisions(owner.district))
    entities: list[dict[str, Any]] = [
        {"uid": _org_uid(owner.org), "attrs": owner_attrs, "parents": []}
    ]
    # The owner's own staff are the owner: one entity, described by the owner.
    if caller.org != owner.org:
        caller_attrs: dict[str, Any] = {"kind": caller.org_kind.value}
        if caller.district:
            caller_attrs["district"] = caller.district
        entities.append({"uid": _org_uid(caller.org), "attrs": caller_attrs, "parents": []})
    fact_attrs: dict[str, Any] = {
        name: [_entity_ref(p) for p in sorted(value)] if isinstance(value, frozenset) else value
        for name, value in facts
    }
    for group in groups:
        entities.append(
            {
                "uid": _resource_uid(owner, record_type, group),
                "attrs": {"owner": _entity_ref(owner.org), "group": group.value, **fact_attrs},
                "parents": [],
            }
        )
    return entities


def _ids(result: cedarpy.AuthzResult) -> tuple[str, ...]:
    names: dict[str, str] = result.diagnostics.id_annotations_by_reason
    return tuple(sorted({names.get(r, r) for r in result.diagnostics.reasons}))


def _decision(
    record_type: str,
    group: FieldGroup,
    exact: cedarpy.AuthzResult,
    approx: cedarpy.AuthzResult,
) -> Decision:
    for result in (exact, approx):
        if result.decision is cedarpy.Decision.NoDecision:
            raise PolicyEvaluationError(
                f"Cedar could not evaluate {record_type}/{group.value}: "
                + "; ".join(result.diagnostics.errors)
            )
    errors = [*exact.diagnostics.errors, *approx.diagnostics.errors]
    if errors:
        # Cedar skips a policy that fails at run time; a skipped forbid would
        # share what the policy meant to hide, so fail closed instead.
        log.error("policy evaluation error on %s/%s: %s", record_type, group.value, errors)
        return Decision(Disclosure.DENY, (), "hidden: a policy failed to evaluate")
    exact_ids, approx_ids = _ids(exact), _ids(approx)
    # A Deny that names policies was decided by forbids; one that names none
    # just found no permit.
    approx_forbidden = not approx.allowed and bool(approx_ids)
    if approx_forbidden:
        # The exact value tells more than its approximation: hiding the
        # approximation hides the exact value too.
        return Decision(Disclosure.DENY, approx_ids, f"hidden by policy {_join(approx_ids)}")
    if exact.allowed:
        return Decision(Disclosure.EXACT, exact_ids, f"shown exactly by policy {_join(exact_ids)}")
    if approx.allowed:
        if group in APPROXIMABLE:
            return Decision(
                Disclosure.APPROXIMATE, approx_ids, f"approximated by policy {_join(approx_ids)}"
            )
        return Decision(
            Disclosure.DENY,
            (),
            f"hidden: policy {_join(approx_ids)} allows only an approximation,"
            f" and {group.value} has none",
        )
    if exact_ids:
        return Decision(Disclosure.DENY, exact_ids, f"hidden by policy {_join(exact_ids)}")
    return Decision(Disclosure.DENY, (), "hidden: no policy shares it")
