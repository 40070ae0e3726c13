"""Project code lists: resource kinds and their GB/T 38565-2020 classes.

GB/T 38565-2020 (应急物资分类及编码) codes supplies in four levels; the first
level has three classes: 1 basic living supplies (基本生活保障物资), 2 emergency
equipment and supporting supplies (应急装备及配套物资), 3 engineering materials
and machinery (工程材料与机械加工设备). Linli's kinds carry only that first-level
class. They are project codes (``linli:...``), never presented as the
standard's own lower-level codes, which this project does not reproduce.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["RESOURCE_KINDS", "ResourceKind", "SupplyClass", "resource_kind"]


class SupplyClass(enum.StrEnum):
    """First-level classes of GB/T 38565-2020."""

    BASIC_LIVING = "1"
    EQUIPMENT = "2"
    ENGINEERING = "3"


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """One entry of the resource-kind code list."""

    code: str
    name_zh: str
    name_en: str
    supply_class: SupplyClass
    default_unit: str
    reusable: bool


_KINDS = [
    ResourceKind(
        "drinking_water", "饮用水", "Drinking water", SupplyClass.BASIC_LIVING, "箱", False
    ),
    ResourceKind(
        "instant_food", "方便食品", "Ready-to-eat food", SupplyClass.BASIC_LIVING, "箱", False
    ),
    ResourceKind("rice", "大米", "Rice", SupplyClass.BASIC_LIVING, "公斤", False),
    ResourceKind("cotton_quilt", "棉被", "Quilt", SupplyClass.BASIC_LIVING, "床", True),
    ResourceKind("folding_bed", "折叠床", "Folding bed", SupplyClass.BASIC_LIVING, "张", True),
    ResourceKind("tent", "帐篷", "Tent", SupplyClass.BASIC_LIVING, "顶", True),
    ResourceKind("first_aid_kit", "急救包", "First-aid kit", SupplyClass.EQUIPMENT, "个", False),
    ResourceKind("medical_masks", "医用口罩", "Medical masks", SupplyClass.EQUIPMENT, "只", False),
    ResourceKind(
        "portable_generator", "移动发电机", "Portable generator", SupplyClass.EQUIPMENT, "台", True
    ),
    ResourceKind("water_pump", "抽水泵", "Water pump", SupplyClass.EQUIPMENT, "台", True),
    ResourceKind("life_jacket", "救生衣", "Life jacket", SupplyClass.EQUIPMENT, "件", True),
    ResourceKind("rubber_boat", "冲锋舟", "Rescue boat", SupplyClass.EQUIPMENT, "艘", True),
    ResourceKind("flashlight", "手电筒", "Flashlight", SupplyClass.EQUIPMENT, "个", True),
    ResourceKind(
        "fire_extinguisher", "灭火器", "Fire extinguisher", SupplyClass.EQUIPMENT, "具", False
    ),
    ResourceKind("aed", "自动体外除颤器", "AED", SupplyClass.EQUIPMENT, "台", True),
    ResourceKind("sandbags", "沙袋", "Sandbags", SupplyClass.ENGINEERING, "条", False),
    ResourceKind("tarpaulin", "防水篷布", "Tarpaulin", SupplyClass.ENGINEERING, "块", True),
    ResourceKind("chainsaw", "油锯", "Chainsaw", SupplyClass.ENGINEERING, "台", True),
    ResourceKind("excavator", "挖掘机", "Excavator", SupplyClass.ENGINEERING, "台", True),
]

RESOURCE_KINDS: dict[str, ResourceKind] = {kind.code: kind for kind in _KINDS}


def resource_kind(code: str) -> ResourceKind:
    """Look a kind up by code; ``KeyError`` when it is not in the code list."""
    return RESOURCE_KINDS[code]


@dataclass(frozen=True, slots=True)
class RiskCategory:
    """One entry of the risk-flag category code list."""

    code: str
    name_zh: str
    name_en: str
    incident_category: str  # an IncidentCategory value (GB/T 35561 class)


_RISKS = [
    RiskCategory(
        "slope_instability",
        "边坡裂缝/滑坡隐患",
        "Cracked slope / landslide risk",
        "natural_disaster",
    ),
    RiskCategory("flooding", "积水内涝", "Flooding / waterlogging", "natural_disaster"),
    RiskCategory("building_damage", "房屋受损", "Damaged building", "accident"),
    RiskCategory("gas_leak", "燃气泄漏", "Gas smell / leak", "accident"),
    RiskCategory("fire_hazard", "火灾隐患", "Fire hazard", "accident"),
    RiskCategory("power_outage", "停电", "Power outage", "accident"),
    RiskCategory("road_blocked", "道路阻断", "Road blocked", "accident"),
    RiskCategory(
        "vulnerable_person",
        "独居老人/弱势人员失联",
        "Vulnerable resident cut off",
        "social_security",
    ),
    RiskCategory("disease_cluster", "疑似聚集性疫情", "Suspected disease cluster", "public_health"),
    RiskCategory("other", "其他", "Other", "social_security"),
    RiskCategory("sensor_fault", "传感器故障/失联", "Sensor silent or faulty", "accident"),
]

RISK_CATEGORIES: dict[str, RiskCategory] = {risk.code: risk for risk in _RISKS}
__all__ += ["RISK_CATEGORIES", "RiskCategory"]


@dataclass(frozen=True, slots=True)
class Purpose:
    """One entry of the default code list of purposes a caller may state (``X-Linli-Purpose``)."""

    code: str
    name_zh: str
    name_en: str

    @property
    def label(self) -> str:
        """How people read it: the Chinese name, then the English one."""
        return f"{self.name_zh} {self.name_en}"


_PURPOSES = [
    Purpose("rescue", "搜救", "Search and rescue"),
    Purpose("medical", "医疗救护", "Medical care"),
    Purpose("evacuation", "转移安置", "Evacuation and resettlement"),
    Purpose("welfare-check", "入户探访", "Welfare check"),
    Purpose("relief-distribution", "物资发放", "Relief distribution"),
    Purpose("volunteer-dispatch", "志愿者调度", "Volunteer dispatch"),
]

PURPOSE_CODE_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
"""A purpose code: lower-case letters, digits and hyphens, up to 40 characters."""

DEFAULT_PURPOSES: dict[str, str] = {purpose.code: purpose.label for purpose in _PURPOSES}
"""The purposes every service accepts unless its ``purposes`` setting says otherwise."""
__all__ += ["DEFAULT_PURPOSES", "PURPOSE_CODE_PATTERN", "Purpose"]


@dataclass(frozen=True, slots=True)
class VolunteerSkill:
    """One entry of the skill code list an aid request for volunteers names.

    A Volunteer record's ``skills`` are free text; a volunteer has the skill when one
    of its skills contains one of ``labels`` (case-folded), as the ``skills`` filter does.
    """

    code: str
    name_zh: str
    name_en: str
    labels: tuple[str, ...]


_SKILLS = [
    VolunteerSkill("first_aid", "急救", "First aid", ("急救", "first aid")),
    VolunteerSkill("electrician", "电工", "Electrician", ("电工", "electrician")),
    VolunteerSkill("driver", "驾驶", "Driver", ("驾驶", "司机", "driver")),
    VolunteerSkill(
        "medical", "医护", "Nurse or doctor", ("医生", "护士", "医护", "nurse", "doctor")
    ),
    VolunteerSkill("rescue", "救援", "Search and rescue", ("救援", "搜救", "rescue")),
    VolunteerSkill("counselling", "心理疏导", "Counselling", ("心理", "counsel")),
    VolunteerSkill("cooking", "炊事", "Cooking", ("炊事", "做饭", "cook")),
    VolunteerSkill("logistics", "搬运物资", "Carrying and logistics", ("搬运", "logistics")),
]

VOLUNTEER_SKILLS: dict[str, VolunteerSkill] = {skill.code: skill for skill in _SKILLS}
VOLUNTEERS_KIND = "volunteers"
"""The ``resourceKind`` of an aid request for people (EDXL-RM resource type: personnel)."""


def has_skill(skills: list[str], code: str) -> bool:
    """Whether free-text ``skills`` hold the listed skill ``code``."""
    known = VOLUNTEER_SKILLS.get(code)
    if known is None:
        return False
    held = [s.casefold() for s in skills]
    return any(label.casefold() in h for label in known.labels for h in held)


__all__ += ["VOLUNTEERS_KIND", "VOLUNTEER_SKILLS", "VolunteerSkill", "has_skill"]
