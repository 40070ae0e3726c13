"""Demo data: three neighbouring communities of one district, in Chinese with English."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AID_PROVIDER",
    "AID_REQUESTER",
    "COMMUNITIES",
    "DISTRICT",
    "EMERGENCY_OFFICE",
    "EXAMPLE_AID_REQUEST",
    "EXAMPLE_FLAG",
    "EXAMPLE_FLAG_COMMUNITY",
    "DemoCommunity",
]


@dataclass(frozen=True)
class DemoCommunity:
    """One demo community and what it holds."""

    code: str
    name: str
    lon: float
    lat: float
    neighbours: tuple[str, ...]
    resources: list[dict[str, Any]] = field(default_factory=list)
    shelters: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    volunteers: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


DISTRICT = "110105"  # 北京市朝阳区 (GB/T 2260)
EMERGENCY_OFFICE = "110105400001"  # 区应急管理局: it keeps the district's duty desk in the demo

# What the demo shows community staff raising (at 建国里, the gas smell of its incident).
EXAMPLE_FLAG_COMMUNITY = "110105001003"
EXAMPLE_FLAG: dict[str, Any] = {
    "category": "gas_leak",
    "description": "2号楼东侧燃气味加重 Gas smell stronger east of building 2",
    "location": _point(116.4391, 39.9065),
    "estimatedSeverity": "III",
}

COMMUNITIES = [
    DemoCommunity(
        code="110105001001",
        name="永安里社区 Yong'anli Community",
        lon=116.4446,
        lat=39.9087,
        neighbours=("110105001002", "110105001003"),
        resources=[
            {
                "kind": "portable_generator",
                "name": "5千瓦汽油发电机 5 kW generator",
                "quantity": 3,
                "available": 2,
                "unit": "台",
                "location": _point(116.4451, 39.9090),
                "address": "永安里东街3号院物业库房",
            },
            {
                "kind": "drinking_water",
                "name": "瓶装饮用水 Bottled water 550 ml×24",
                "quantity": 420,
                "available": 380,
                "unit": "箱",
                "location": _point(116.4440, 39.9082),
                "address": "社区居委会仓库",
            },
            {
                "kind": "sandbags",
                "name": "防汛沙袋 Flood sandbags",
                "quantity": 1500,
                "available": 1500,
                "unit": "条",
                "location": _point(116.4462, 39.9079),
            },
        ],
        shelters=[
            {
                "name": "永安里小学体育馆 Yong'anli Primary School gym",
                "capacity": 300,
                "occupancy": 42,
                "accessible": True,
                "location": _point(116.4431, 39.9095),
                "address": "永安里中街10号",
            },
        ],
        incidents=[
            {
                "title": "地下车库积水 Underground car park flooded",
                "category": "NATURAL_DISASTER",
                "capCategory": "MET",
                "severityLevel": "IV",
                "status": "ACTIVE",
                "location": _point(116.4449, 39.9072),
                "address": "永安里南街5号楼地下车库",
                "affectedPeople": 12,
                "description": "暴雨导致车库积水约40厘米，已封闭入口。",
            },
        ],
        volunteers=[
            {
                "name": "王秀兰",
                "phone": "13800000001",
                "skills": ["急救", "first aid"],
                "team": "一网格",
            },
            {
                "name": "李建国",
                "phone": "13800000002",
                "skills": ["电工", "electrician"],
                "team": "二网格",
            },
        ],
        flags=[
            {
                "category": "vulnerable_person",
                "description": "6号楼独居老人张奶奶电话联系不上，楼道积水。",
                "location": _point(116.4455, 39.9084),
                "estimatedSeverity": "III",
            },
        ],
    ),
    DemoCommunity(
        code="110105001002",
        name="光华里社区 Guanghuali Community",
        lon=116.4532,
        lat=39.9141,
        neighbours=("110105001001",),
        resources=[
            {
                "kind": "water_pump",
                "name": "潜水排污泵 Submersible pump",
                "quantity": 4,
                "available": 4,
                "unit": "台",
                "location": _point(116.4529, 39.9138),
            },
            {
                "kind": "folding_bed",
                "name": "折叠行军床 Folding camp bed",
                "quantity": 80,
                "available": 65,
                "unit": "张",
                "location": _point(116.4540, 39.9145),
            },
            {
                "kind": "first_aid_kit",
                "name": "家庭急救包 First-aid kit",
                "quantity": 60,
                "available": 60,
                "unit": "个",
                "location": _point(116.4535, 39.9140),
            },
        ],
        shelters=[
            {
                "name": "光华里社区活动中心 Community centre",
                "capacity": 120,
                "occupancy": 0,
                "accessible": True,
                "location": _point(116.4537, 39.9143),
            },
        ],
        flags=[
            {
                "category": "slope_instability",
                "description": "光华路绿化带边坡出现裂缝，长约3米。",
                "location": _point(116.4551, 39.9150),
                "estimatedSeverity": "III",
            },
        ],
    ),
    DemoCommunity(
        code="110105001003",
        name="建国里社区 Jianguoli Community",
        lon=116.4398,
        lat=39.9062,
        neighbours=("110105001001",),
        resources=[
            {
                "kind": "portable_generator",
                "name": "柴油发电机 Diesel generator 10 kW",
                "quantity": 1,
                "available": 1,
                "unit": "台",
                "location": _point(116.4395, 39.9060),
            },
            {
                "kind": "tent",
                "name": "救灾帐篷 Relief tent",
                "quantity": 25,
                "available": 20,
                "unit": "顶",
                "location": _point(116.4401, 39.9066),
            },
            {
                "kind": "instant_food",
                "name": "自热米饭 Self-heating rice",
                "quantity": 200,
                "available": 150,
                "unit": "箱",
                "location": _point(116.4392, 39.9058),
            },
        ],
        shelters=[
            {
                "name": "建国里人防工程 Civil-defence shelter",
                "capacity": 500,
                "occupancy": 0,
                "accessible": False,
                "status": "CLOSED",
                "location": _point(116.4405, 39.9055),
            },
        ],
        incidents=[
            {
                "title": "燃气管道异味 Gas smell reported",
                "category": "ACCIDENT",
                "capCategory": "SAFETY",
                "severityLevel": "III",
                "status": "REPORTED",
                "location": _point(116.4390, 39.9064),
                "address": "建国里2号楼东侧",
            },
        ],
    ),
]

# The open mutual-aid request the demo seeds: 建国里 asks 永安里 for one of its generators.
AID_REQUESTER = "110105001003"
AID_PROVIDER = "110105001001"
EXAMPLE_AID_REQUEST: dict[str, Any] = {
    "requester": AID_REQUESTER,
    "provider": AID_PROVIDER,
    "resourceKind": "portable_generator",
    "quantity": 1,
    "unit": "台",
    "purpose": "3号楼停电，电梯困人救援 Power cut at building 3: people stuck in a lift",
}
