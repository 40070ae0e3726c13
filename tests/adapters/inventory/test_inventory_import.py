"""Warehouse inventory import: column mappings, Chinese headers, exact row reports, re-import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import delete, func, select

from adapters.inventory.client import InventorySettings
from adapters.inventory.service import import_file
from adapters.store import SPECS, external_keys
from schema.runtime.db import Database
from tests.conftest import REPO, DatabaseUnderTest

CHINESE = {
    "item_code": "物资编码",
    "name": "物资名称",
    "quantity": "数量",
    "unit": "单位",
    "kind": "类别",
}

CSV_TEXT = """物资编码,物资名称,数量,单位,类别
W-001,瓶装饮用水,120,箱,饮用水
W-002,折叠床,"1,200",张,folding_bed
W-003,发电机,两台,台,移动发电机
W-004,神秘物资,5,个,魔法棒
W-005,帐篷,-3,顶,tent
,无编码,1,个,tent
W-001,重复的水,5,箱,饮用水
W-006,沙袋,300.5,条,sandbags
W-007,急救包,40,个,First-aid kit
"""


def settings(**values: object) -> InventorySettings:
    return InventorySettings(warehouse="朝阳-1号库", columns=CHINESE, **values)  # type: ignore[arg-type]


async def stored(db: Database) -> dict[str, tuple[str, int, str]]:
    table = SPECS["Resource"].table
    async with db.sessions() as session:
        rows = (await session.execute(select(table))).scalars()
        return {row.name: (row.kind, row.quantity, row.unit) for row in rows}


async def clean(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(delete(external_keys))
        await session.execute(delete(SPECS["Resource"].table))


async def test_csv_with_chinese_headers_exact_report_and_reimport(
    adapter_db: DatabaseUnderTest, tmp_path: Path
) -> None:
    path = tmp_path / "库存.csv"
    path.write_text(CSV_TEXT, encoding="utf-8-sig")
    db = Database(adapter_db.url)
    try:
        await clean(db)
        report = await import_file(db, path, settings())
        assert [(r.line, r.code, r.reason) for r in report.rejected] == [
            (4, "INVENTORY_BAD_NUMBER", "quantity '两台' is not a number"),
            (5, "UNKNOWN_RESOURCE_KIND", "'魔法棒' is not a known resource kind"),
            (6, "INVENTORY_BAD_NUMBER", "quantity '-3' is not a whole number from 0 to 1000000000"),
            (7, "INVENTORY_MISSING_VALUE", "item_code is empty"),
            (8, "INVENTORY_DUPLICATE_ITEM", "item code 'W-001' already on line 2"),
            (
                9,
                "INVENTORY_BAD_NUMBER",
                "quantity '300.5' is not a whole number from 0 to 1000000000",
            ),
        ]
        assert (report.created, report.updated, report.unchanged, report.fatal) == (3, 0, 0, False)
        assert await stored(db) == {
            "瓶装饮用水": ("drinking_water", 120, "箱"),
            "折叠床": ("folding_bed", 1200, "张"),
            "急救包": ("first_aid_kit", 40, "个"),
        }

        # The next export: quantities changed for one item, the rest the same; no duplicates.
        path.write_text(CSV_TEXT.replace("W-001,瓶装饮用水,120", "W-001,瓶装饮用水,80"), "utf-8")
        again = await import_file(db, path, settings())
        assert (again.created, again.updated, again.unchanged) == (0, 1, 2)
        assert (await stored(db))["瓶装饮用水"] == ("drinking_water", 80, "箱")
        async with db.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(SPECS["Resource"].table))
        assert count == 3
    finally:
        await db.dispose()


async def test_missing_column_imports_nothing(
    adapter_db: DatabaseUnderTest, tmp_path: Path
) -> None:
    path = tmp_path / "no-unit.csv"
    path.write_text("物资编码,物资名称,数量,类别\nW-1,水,1,饮用水\n", encoding="utf-8")
    db = Database(adapter_db.url)
    try:
        await clean(db)
        report = await import_file(db, path, settings())
        assert report.fatal
        assert [(r.line, r.code, r.reason) for r in report.rejected] == [
            (1, "INVENTORY_MISSING_COLUMN", "no column '单位' (for unit)")
        ]
        assert await stored(db) == {}
    finally:
        await db.dispose()


async def test_xlsx_rows_are_read_with_their_row_numbers(
    adapter_db: DatabaseUnderTest, tmp_path: Path
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["物资编码", "物资名称", "数量", "单位", "类别"])
    sheet.append(["X-1", "救生衣", 50, "件", "救生衣"])
    sheet.append(["X-2", "抽水泵", "abc", "台", "water_pump"])
    sheet.append(["X-3", "冲锋舟", 2.0, "艘", "rubber_boat"])
    path = tmp_path / "库存.xlsx"
    book.save(path)
    db = Database(adapter_db.url)
    try:
        await clean(db)
        report = await import_file(db, path, settings())
        assert [(r.line, r.code) for r in report.rejected] == [(3, "INVENTORY_BAD_NUMBER")]
        assert await stored(db) == {
            "救生衣": ("life_jacket", 50, "件"),
            "冲锋舟": ("rubber_boat", 2, "艘"),
        }
    finally:
        await db.dispose()


def test_cli_prints_the_report(adapter_db: DatabaseUnderTest, tmp_path: Path) -> None:
    path = tmp_path / "inv.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    env = {**os.environ, "LINLI_DATABASE_URL": adapter_db.url, "LINLI_LOG_JSON": "false"}
    result = subprocess.run(
        [sys.executable, "-c", "from hub.cli import main; main()", "adapter", "import-inventory",
         str(path), "--mapping", json.dumps(CHINESE, ensure_ascii=False), "--warehouse", "CLI-1",
         "--json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["created"] == 3
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [
        (4, "INVENTORY_BAD_NUMBER"),
        (5, "UNKNOWN_RESOURCE_KIND"),
        (6, "INVENTORY_BAD_NUMBER"),
        (7, "INVENTORY_MISSING_VALUE"),
        (8, "INVENTORY_DUPLICATE_ITEM"),
        (9, "INVENTORY_BAD_NUMBER"),
    ]
