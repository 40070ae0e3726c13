"""Routing rules that name a department nobody staffs, or one of another district, warn at start."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.auth.service import create_client
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest
from tests.hub.flags.conftest import DEPT_ESCALATION, DEPT_GAS, FlagsHub

ELSEWHERE = "110106400001"  # a department of the neighbouring district


async def _client(url: str, org: str, scopes: str, *, disabled: bool = False) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            client, _ = await create_client(
                session, org=org, org_kind=OrgKind.DEPARTMENT, district=org[:6], scopes=scopes
            )
            client.disabled = disabled
    finally:
        await db.dispose()


async def test_unstaffed_and_foreign_departments_are_named_at_start(
    start_flags_hub: Callable[..., Awaitable[FlagsHub]],
    fresh_database: DatabaseUnderTest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    routing = tmp_path / "routing-warnings.toml"
    routing.write_text(
        f"""
[defaults]
department = "{DEPT_ESCALATION}"
escalate_to = "{DEPT_ESCALATION}"

[[routes]]
category = "gas_leak"
department = "{DEPT_GAS}"

[[routes]]
category = "flooding"
department = "{ELSEWHERE}"
""",
        "utf-8",
    )
    await _client(fresh_database.url, DEPT_ESCALATION, "risk:verify")
    await _client(fresh_database.url, DEPT_GAS, "resources:read")  # cannot verify flags
    await _client(fresh_database.url, ELSEWHERE, "risk:verify", disabled=True)
    with caplog.at_level(logging.WARNING, logger="linli.hub.flags"):
        await start_flags_hub(routing_file=routing)
    warnings: list[Any] = [r.getMessage() for r in caplog.records if r.name == "linli.hub.flags"]
    assert sorted(warnings) == sorted(
        [
            f"routing: route #1 (gas_leak in any area) names department {DEPT_GAS}, which has"
            " no active client or person with risk:verify: its flags wait unseen until they"
            " escalate (add one with `linli clients add` or `linli users add`)",
            f"routing: route #2 (flooding in any area) names department {ELSEWHERE}, outside"
            " district 110105",
            f"routing: route #2 (flooding in any area) names department {ELSEWHERE}, which has"
            " no active client or person with risk:verify: its flags wait unseen until they"
            " escalate (add one with `linli clients add` or `linli users add`)",
        ]
    )
