"""Which department gets a flag: rules by category and area, from a TOML file.

    [defaults]
    department = "110105400000"      # when no rule matches (else the duty desk)
    ack_deadline_s = 1800
    escalate_to = "110105400000"

    [[routes]]
    category = "gas_leak"            # a RISK_CATEGORIES code
    area = "110105001"               # prefix of the community's division code ("" = anywhere)
    department = "110105400003"
    ack_deadline_s = 600
    escalate_to = "110105400000"     # optional; the duty desk when absent

The rule with the longest matching ``area`` for the flag's category wins.
Rules are checked when the hub starts; a bad file stops it with a message
naming the file, the rule and the problem.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.flags.errors import RoutingConfigError
from schema.codes import RISK_CATEGORIES

__all__ = ["Route", "RoutingRules", "load_routing"]

_DEPARTMENT = re.compile(r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")
_AREA = re.compile(r"^[0-9]{0,12}$")
_RULE_KEYS = {"category", "area", "department", "ack_deadline_s", "escalate_to"}
_DEFAULT_KEYS = {"department", "ack_deadline_s", "escalate_to"}


@dataclass(frozen=True, slots=True)
class Route:
    """Where a flag goes and how long that department has to acknowledge it."""

    department: str
    ack_deadline_s: int
    escalate_to: str
    rule: str  # which rule matched, for the routed step's note


@dataclass(frozen=True, slots=True)
class _Rule:
    category: str
    area: str
    route: Route


class RoutingRules:
    """The validated rules; ``route`` picks one for a flag."""

    def __init__(self, rules: list[_Rule], default: Route) -> None:
        self.rules = rules
        self.default = default

    def route(self, category: str, community: str) -> Route:
        """The route of a flag of ``category`` raised by ``community`` (longest area wins)."""
        matches = [r for r in self.rules if r.category == category and community.startswith(r.area)]
        if not matches:
            return self.default
        return max(matches, key=lambda r: len(r.area)).route


def _department(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not _DEPARTMENT.match(value):
        raise RoutingConfigError(
            f"{where}: {key} = {value!r} is not a department code (6, 9 or 12 digits)"
        )
    return value


def _deadline(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RoutingConfigError(
            f"{where}: ack_deadline_s = {value!r} must be a positive whole number of seconds"
        )
    return value


def _unknown_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise RoutingConfigError(f"{where}: unknown key(s) {', '.join(extra)}")


def load_routing(
    path: Path | None, *, duty_desk: str, default_deadline_s: int = 1800
) -> RoutingRules:
    """The rules of ``path``; without a file every category goes to ``duty_desk``."""
    _department(duty_desk, "settings", "duty_desk")
    fallback = Route(duty_desk, default_deadline_s, duty_desk, "default: duty desk")
    if path is None:
        return RoutingRules([], fallback)
    try:
        document = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RoutingConfigError(f"{path}: cannot read the routing rules: {exc}") from exc
    _unknown_keys(document, {"routes", "defaults"}, str(path))
    defaults = document.get("defaults", {})
    if not isinstance(defaults, dict):
        raise RoutingConfigError(f"{path}: [defaults] must be a table")
    where = f"{path} [defaults]"
    _unknown_keys(defaults, _DEFAULT_KEYS, where)
    default = Route(
        _department(defaults.get("department", duty_desk), where, "department"),
        _deadline(defaults.get("ack_deadline_s", default_deadline_s), where),
        _department(defaults.get("escalate_to", duty_desk), where, "escalate_to"),
        "defaults",
    )
    routes = document.get("routes", [])
    if not isinstance(routes, list):
        raise RoutingConfigError(f"{path}: routes must be an array of tables ([[routes]])")
    rules: list[_Rule] = []
    for index, item in enumerate(routes, start=1):
        where = f"{path} [[routes]] #{index}"
        if not isinstance(item, dict):
            raise RoutingConfigError(f"{where}: must be a table")
        _unknown_keys(item, _RULE_KEYS, where)
        category = item.get("category")
        if category not in RISK_CATEGORIES:
            raise RoutingConfigError(
                f"{where}: category = {category!r} is not in the risk-category code list "
                f"({', '.join(RISK_CATEGORIES)})"
            )
        area = item.get("area", "")
        if not isinstance(area, str) or not _AREA.match(area):
            raise RoutingConfigError(
                f"{where}: area = {area!r} must be a division-code prefix (up to 12 digits)"
            )
        if "department" not in item:
            raise RoutingConfigError(f"{where}: department is missing")
        route = Route(
            _department(item["department"], where, "department"),
            _deadline(item.get("ack_deadline_s", default.ack_deadline_s), where),
            _department(item.get("escalate_to", duty_desk), where, "escalate_to"),
            f"route #{index} ({category} in {area or 'any area'})",
        )
        if any(r.category == category and r.area == area for r in rules):
            raise RoutingConfigError(f"{where}: another rule has the same category and area")
        rules.append(_Rule(category, area, route))
    return RoutingRules(rules, default)
