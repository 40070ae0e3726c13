"""Which department gets a flag: rules by category, area and severity, from a TOML file.

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
    open311 = "city311"              # optional: confirmed flags go out to this Open311 system

    [[routes]]
    category = "gas_leak"
    area = "110105001"
    severity = "II"                  # optional: flags of severity II or more severe (II, I)
    department = "110100400001"      # e.g. a department of the city above the district

    [open311.city311]                # one table per municipal Open311 GeoReport v2 system
    endpoint = "https://311.example.gov.cn/open311/v2"
    api_key = "..."                  # or api_key_env = "CITY311_API_KEY" (read at start-up)
    service_code = "001"             # the service every flag is filed under ...
    services = { gas_leak = "002" }  # ... unless its category has its own (optional)
    jurisdiction_id = "110105"       # optional
    timeout_s = 10.0                 # optional: one HTTP call
    token_attempts = 3               # optional: reads of tokens/{token} right after the POST
    token_wait_s = 0.5               # optional: pause between those reads

``[defaults]`` may name an ``open311`` system too (for flags no rule matches).
The rule with the longest matching ``area`` for the flag's category wins.

``severity`` (a ``SeverityLevel``: I, the most severe, to IV) makes a rule match
only flags of *at least* that severity (``estimated_severity`` as severe or more
severe: "II" matches I and II). Among the rules of the longest matching area, a
rule with a matching severity beats one without, and of two with a matching
severity the stricter (more severe threshold) wins; a longer area still beats a
shorter one whatever their severities. A flag of unknown severity matches only
rules without one. An unknown severity stops the hub like any other bad rule.
Rules are checked when the hub starts; a bad file stops it with a message
naming the file, the rule and the problem (never a secret's value).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from hub.flags.errors import RoutingConfigError
from schema.codes import RISK_CATEGORIES
from schema.enums import SeverityLevel

__all__ = ["Open311Target", "Route", "RoutingRules", "load_routing"]

_DEPARTMENT = re.compile(r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")
_AREA = re.compile(r"^[0-9]{0,12}$")
_TARGET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_RULE_KEYS = {
    "category",
    "area",
    "department",
    "ack_deadline_s",
    "escalate_to",
    "open311",
    "severity",
}
# how severe each level is: a higher rank is more severe (I is the most severe)
_SEVERITY_RANK = {level.value: len(SeverityLevel) - i for i, level in enumerate(SeverityLevel)}
_DEFAULT_KEYS = {"department", "ack_deadline_s", "escalate_to", "open311"}
_OPEN311_KEYS = {
    "endpoint",
    "api_key",
    "api_key_env",
    "service_code",
    "services",
    "jurisdiction_id",
    "timeout_s",
    "token_attempts",
    "token_wait_s",
}


@dataclass(frozen=True, slots=True)
class Open311Target:
    """A municipal Open311 GeoReport v2 system that confirmed flags are filed with."""

    name: str
    endpoint: str
    api_key: SecretStr = field(repr=False)
    service_code: str
    services: Mapping[str, str] = field(default_factory=dict)  # risk category -> service_code
    jurisdiction_id: str | None = None
    timeout_s: float = 10.0
    token_attempts: int = 3
    token_wait_s: float = 0.5

    def service_codes(self) -> dict[str, str]:
        """The service_code of every risk category."""
        return {code: self.services.get(code, self.service_code) for code in RISK_CATEGORIES}

    def sink_options(self) -> dict[str, Any]:
        """The settings the ``open311`` adapter's ``FlagSinkFactory`` takes for this system."""
        return {
            "endpoint": self.endpoint,
            "api_key": self.api_key,
            "jurisdiction_id": self.jurisdiction_id,
            "format": "json",
            "timeout_s": self.timeout_s,
            "flag_services": self.service_codes(),
            "token_attempts": self.token_attempts,
            "token_wait_s": self.token_wait_s,
        }


@dataclass(frozen=True, slots=True)
class Route:
    """Where a flag goes and how long that department has to acknowledge it."""

    department: str
    ack_deadline_s: int
    escalate_to: str
    rule: str  # which rule matched, for the routed step's note
    open311: str | None = None  # the Open311 system confirmed flags are filed with


@dataclass(frozen=True, slots=True)
class _Rule:
    category: str
    area: str
    route: Route
    severity: str | None = None  # the least severe level the rule takes; None: any

    def matches(self, category: str, community: str, severity: str | None) -> bool:
        if self.category != category or not community.startswith(self.area):
            return False
        if self.severity is None:
            return True
        rank = _SEVERITY_RANK.get(severity or "")
        return rank is not None and rank >= _SEVERITY_RANK[self.severity]

    def precedence(self) -> tuple[int, int]:
        """Longest area first; then a rule with a severity, the stricter the better."""
        return len(self.area), _SEVERITY_RANK[self.severity] if self.severity else 0


class RoutingRules:
    """The validated rules; ``route`` picks one for a flag."""

    def __init__(
        self,
        rules: list[_Rule],
        default: Route,
        open311: dict[str, Open311Target] | None = None,
    ) -> None:
        self.rules = rules
        self.default = default
        self.open311 = open311 or {}

    def route(self, category: str, community: str, severity: str | None = None) -> Route:
        """The route of a flag of ``category`` and ``severity`` raised by ``community``.

        The longest matching area wins; for the same area a rule whose severity the flag
        reaches beats one without (see the module docstring).
        """
        matches = [r for r in self.rules if r.matches(category, community, severity)]
        if not matches:
            return self.default
        return max(matches, key=_Rule.precedence).route

    def departments(self) -> dict[str, str]:
        """Every department a flag can be sent to, and the first rule that names it."""
        named: dict[str, str] = {}
        for route in [*(r.route for r in self.rules), self.default]:
            named.setdefault(route.department, route.rule)
            named.setdefault(route.escalate_to, f"{route.rule}, escalate_to")
        return named

    def warnings(self, *, district: str, staffed: set[str]) -> list[str]:
        """What is wrong with the rules in this district, for the log at start-up.

        ``staffed``: the departments with an active client or person that may verify flags. A flag
        routed to a department with none waits unseen until it escalates; one in another
        district's code space is most likely a typing error.
        """
        found = []
        for department, rule in sorted(self.departments().items()):
            if not department.startswith(district):
                found.append(
                    f"routing: {rule} names department {department}, outside district {district}"
                )
            if department not in staffed:
                found.append(
                    f"routing: {rule} names department {department}, which has no active client"
                    " or person with risk:verify: its flags wait unseen until they escalate (add"
                    " one with `linli clients add` or `linli users add`)"
                )
        return found

    def open311_target(
        self, category: str, community: str, department: str | None, severity: str | None = None
    ) -> str | None:
        """The Open311 system of a flag's route, if ``department`` is still the route's own."""
        route = self.route(category, community, severity)
        return route.open311 if route.department == department else None


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


def _text(value: Any, where: str, key: str, *, secret: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        shown = "" if secret else f" = {value!r}"  # a secret's value never goes in a message
        raise RoutingConfigError(f"{where}: {key}{shown} must be a non-empty string")
    return value


def _positive(value: Any, where: str, key: str, kind: type[int] | type[float]) -> Any:
    allowed = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed) or value <= 0:
        raise RoutingConfigError(f"{where}: {key} = {value!r} must be a positive number")
    return kind(value)


def _open311_target(name: str, table: Any, path: Path) -> Open311Target:
    where = f"{path} [open311.{name}]"
    if not _TARGET_NAME.match(name):
        raise RoutingConfigError(f"{where}: the name must be letters, digits, - or _ (up to 40)")
    if not isinstance(table, dict):
        raise RoutingConfigError(f"{where}: must be a table")
    _unknown_keys(table, _OPEN311_KEYS, where)
    endpoint = _text(table.get("endpoint"), where, "endpoint")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RoutingConfigError(f"{where}: endpoint = {endpoint!r} is not an http(s) URL")
    if parts.username or parts.password or parts.query:
        raise RoutingConfigError(
            f"{where}: endpoint must not carry credentials or a query (use api_key)"
        )
    if ("api_key" in table) == ("api_key_env" in table):
        raise RoutingConfigError(f"{where}: give exactly one of api_key and api_key_env")
    if "api_key" in table:
        api_key = _text(table["api_key"], where, "api_key", secret=True)
    else:
        variable = _text(table["api_key_env"], where, "api_key_env")
        api_key = _text(os.environ.get(variable), where, f"the variable {variable}", secret=True)
    services = table.get("services", {})
    if not isinstance(services, dict):
        raise RoutingConfigError(f"{where}: services must be a table of category = service_code")
    for category, code in services.items():
        if category not in RISK_CATEGORIES:
            raise RoutingConfigError(
                f"{where}: services.{category} is not in the risk-category code list"
            )
        _text(code, where, f"services.{category}")
    jurisdiction = table.get("jurisdiction_id")
    return Open311Target(
        name=name,
        endpoint=endpoint.rstrip("/"),
        api_key=SecretStr(api_key),
        service_code=_text(table.get("service_code"), where, "service_code"),
        services=dict(services),
        jurisdiction_id=None
        if jurisdiction is None
        else _text(jurisdiction, where, "jurisdiction_id"),
        timeout_s=_positive(table.get("timeout_s", 10.0), where, "timeout_s", float),
        token_attempts=_positive(table.get("token_attempts", 3), where, "token_attempts", int),
        token_wait_s=_positive(table.get("token_wait_s", 0.5), where, "token_wait_s", float),
    )


def _open311_name(
    item: dict[str, Any], targets: dict[str, Open311Target], where: str
) -> str | None:
    name = item.get("open311")
    if name is None:
        return None
    if not isinstance(name, str) or name not in targets:
        known = ", ".join(sorted(targets)) or "none"
        raise RoutingConfigError(
            f"{where}: open311 = {name!r} is not an [open311.<name>] table (defined: {known})"
        )
    return name


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
    _unknown_keys(document, {"routes", "defaults", "open311"}, str(path))
    systems = document.get("open311", {})
    if not isinstance(systems, dict):
        raise RoutingConfigError(f"{path}: open311 must be tables ([open311.<name>])")
    targets = {name: _open311_target(name, table, path) for name, table in systems.items()}
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
        _open311_name(defaults, targets, where),
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
        severity = item.get("severity")
        if severity is not None and severity not in _SEVERITY_RANK:
            raise RoutingConfigError(
                f"{where}: severity = {severity!r} is not a severity level "
                f"({', '.join(_SEVERITY_RANK)}; a rule takes flags of at least that severity)"
            )
        if "department" not in item:
            raise RoutingConfigError(f"{where}: department is missing")
        at_least = f", severity {severity} or more" if severity else ""
        route = Route(
            _department(item["department"], where, "department"),
            _deadline(item.get("ack_deadline_s", default.ack_deadline_s), where),
            _department(item.get("escalate_to", duty_desk), where, "escalate_to"),
            f"route #{index} ({category} in {area or 'any area'}{at_least})",
            _open311_name(item, targets, where),
        )
        if any(r.category == category and r.area == area and r.severity == severity for r in rules):
            raise RoutingConfigError(
                f"{where}: another rule has the same category, area and severity"
            )
        rules.append(_Rule(category, area, route, severity))
    return RoutingRules(rules, default, targets)
