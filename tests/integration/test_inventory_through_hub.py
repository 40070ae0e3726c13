"""A warehouse export through the inventory adapter service and the hub, under the owner's policy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from adapters.inventory.client import InventorySettings
from adapters.inventory.service import InventoryAdapter
from policies import Caller, Mode, Owner, PolicyEngine, Relation
from schema.enums import OrgKind
from tests.hub.federation.conftest import DISTRICT
from tests.integration.conftest import (
    COMMUNITY,
    DEPARTMENT,
    WAREHOUSE_OWNER,
    AdapterService,
    Federated,
    wait_sources_ok,
)

INVENTORY_SOURCE = "adapter-warehouse"
COLUMNS = {"item_code": "物资编码", "name": "物资名称", "quantity": "数量", "unit": "单位",
           "kind": "类别", "available": "可用数量"}  # fmt: skip
EXPORT = """物资编码,物资名称,数量,可用数量,单位,类别
W-001,瓶装饮用水,120,100,箱,饮用水
W-002,折叠床,"1,200",1200,张,folding_bed
W-003,发电机,两台,2,台,移动发电机
W-004,急救包,40,40,个,First-aid kit
"""
RESOURCES = (
    "{ resources(first: 100) { edges { node "
    "{ id owner kind name quantity available unit address shareable } } } }"
)


async def imported(service: AdapterService) -> dict[str, Any]:
    """The adapter's status once a poll has imported the file."""
    for _ in range(200):
        adapter = (await service.described())["adapter"]
        if adapter["last_success_at"] is not None:
            return dict(adapter)
        await asyncio.sleep(0.05)
    raise AssertionError("the inventory adapter never finished a poll")


async def test_warehouse_export_reaches_the_hub_under_the_owners_policy(
    federated: Any, tmp_path: Path
) -> None:
    export = tmp_path / "库存导出.csv"
    export.write_text(EXPORT, encoding="utf-8-sig")
    settings = InventorySettings(
        file=str(export), warehouse="朝阳-1号库", warehouse_address="朝阳区某路1号",
        columns=COLUMNS, interval_s=0.2,
    )  # fmt: skip
    district: Federated = await federated(INVENTORY_SOURCE)
    service = await district.start_adapter(
        INVENTORY_SOURCE, InventoryAdapter(settings), org_code=WAREHOUSE_OWNER
    )

    # The bad row is reported by its line in the file, and only it.
    status = await imported(service)
    assert status["status"] == "degraded"
    assert status["problems"] == [
        {
            "where": "库存导出.csv:4",
            "code": "INVENTORY_BAD_NUMBER",
            "reason": "quantity '两台' is not a number",
        }
    ]

    # A district department sees every imported item exactly.
    department = await district.reader(
        org=DEPARTMENT, kind=OrgKind.DEPARTMENT, scopes="resources:read"
    )
    await wait_sources_ok(department, INVENTORY_SOURCE)
    body = await department.post(RESOURCES)
    assert "errors" not in body, body["errors"]
    assert body["extensions"]["sources"][0] | {"ms": 0} == {
        "path": ["resources"], "source": INVENTORY_SOURCE, "status": "ok", "ms": 0, "count": 3,
        "exhausted": True, "asOf": None,
    }  # fmt: skip
    items = {
        e["node"]["name"]: (
            e["node"]["kind"], e["node"]["quantity"], e["node"]["available"], e["node"]["unit"],
            e["node"]["address"],
        )
        for e in body["data"]["resources"]["edges"]
    }  # fmt: skip
    assert items == {
        "瓶装饮用水": ("drinking_water", 120, 100, "箱", "朝阳区某路1号"),
        "折叠床": ("folding_bed", 1200, 1200, "张", "朝阳区某路1号"),
        "急救包": ("first_aid_kit", 40, 40, "个", "朝阳区某路1号"),
    }
    assert {e["node"]["owner"] for e in body["data"]["resources"]["edges"]} == {INVENTORY_SOURCE}

    # A community that is no neighbour of the warehouse's department is, to it, the public;
    # the baseline policy shares no field of a resource with the public.
    engine = PolicyEngine(None)
    owner = Owner(org=WAREHOUSE_OWNER, kind=OrgKind.DEPARTMENT, district=DISTRICT)
    caller = Caller(
        org=COMMUNITY, org_kind=OrgKind.COMMUNITY, scopes=frozenset({"resources:read"}),
        client_id="community", subject="community", district=DISTRICT,
    )  # fmt: skip
    assert owner.relation_of(caller) is Relation.PUBLIC
    for shareable in (True, False):
        decisions = engine.decisions(
            caller, Relation.PUBLIC, owner, "Resource", mode=Mode.NORMAL,
            record_facts={"shareable": shareable},
        )  # fmt: skip
        assert [g for g in decisions if decisions[g].allowed] == []
    community = await district.reader(
        org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes="resources:read"
    )
    body = await community.post(RESOURCES)
    assert "errors" not in body, body["errors"]
    assert body["data"]["resources"]["edges"] == []
    assert [(r["source"], r["status"], r["count"]) for r in body["extensions"]["sources"]] == [
        (INVENTORY_SOURCE, "ok", 0)
    ]
