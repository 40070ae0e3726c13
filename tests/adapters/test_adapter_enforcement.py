"""An adapter service is enforced and audited as a node is: reasons, emergency mode, audit log."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from adapters.base import HttpFetcher
from adapters.cap import parse_alert
from adapters.cap.client import CapSettings
from adapters.cap.service import CapAdapter
from adapters.store import POLICY, store_alert
from policies.static import TrustedCaller
from schema.enums import OrgKind
from schema.runtime.wellknown import SourceKind, WellKnown
from tests.adapters.conftest import OWNER, RunningAdapter, service_settings, start_adapter
from tests.conftest import CAP_SAMPLES, DatabaseUnderTest, GraphQLClient

DECLARER = "110105000300"  # another department of the district, allowed to declare
DECLARER_TOKEN = "declarer-token-0123456789abcdef"
ALERT_ID = "ENFORCED-ALERT-1"

# The owner widens sharing in an emergency: the alert's addressees become visible to all.
POLICY_FILE = """
@id("owner.emergency.alert-addressees")
permit (principal, action == Linli::Action::"read_exact", resource is Linli::Alert)
when { context.mode == "emergency" && resource.group == "contact" };
"""

ALERTS = "{ alerts(first: 50) { edges { node { identifier addresses } } } }"
DECLARE = """mutation($level: SeverityLevel!, $reason: String!, $at: DateTime!) {
  declareEmergency(level: $level, reason: $reason, expiresAt: $at) { id active declaredByOrg } }"""
END = "mutation($id: ID!) { endEmergency(id: $id) { id active } }"


def _shown(body: dict[str, Any]) -> dict[str, Any]:
    """The test alert as the answer shows it."""
    [node] = [
        e["node"] for e in body["data"]["alerts"]["edges"] if e["node"]["identifier"] == ALERT_ID
    ]
    return dict(node)


@pytest.fixture
async def service(adapter_db: DatabaseUnderTest, tmp_path: Path) -> AsyncIterator[RunningAdapter]:
    """A CAP adapter service with the owner's policy file and one public alert with addressees."""
    policy = tmp_path / "owner.cedar"
    policy.write_text(POLICY_FILE, "utf-8")
    trusted = [
        *service_settings(adapter_db.url).trusted_callers,
        TrustedCaller(
            token=DECLARER_TOKEN,
            org=DECLARER,
            org_kind=OrgKind.DEPARTMENT,
            scopes=["emergency:declare"],
            client_id="declarer",
        ),
    ]
    http = httpx.AsyncClient(timeout=30.0)
    adapter = CapAdapter(
        CapSettings(sources=["http://127.0.0.1:9/none.xml"]),
        HttpFetcher(http, timeout_s=1, max_bytes=1 << 20),
    )
    running = await start_adapter(
        adapter_db.url, adapter, policy_file=str(policy), trusted_callers=trusted
    )
    sample = (CAP_SAMPLES / "cap12-spec-appendix-a2.xml").read_bytes()
    alert = parse_alert(sample).model_copy(
        update={"identifier": ALERT_ID, "addresses": "district-duty-office"}
    )
    async with running.db.transaction() as session:
        await store_alert(session, alert, where="test")
    yield running
    await running.close()


async def _audit_rows(service: RunningAdapter) -> list[dict[str, Any]]:
    table = POLICY.audit_log
    async with service.db.sessions() as session:
        rows = (await session.execute(sa.select(table).order_by(table.c.seq))).mappings().all()
    return [dict(row) for row in rows]


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def test_hidden_fields_carry_reasons_and_the_disclosure_is_audited(
    service: RunningAdapter,
) -> None:
    before = await _audit_rows(service)
    body = await service.community.post(ALERTS)
    assert "errors" not in body, body
    assert _shown(body) == {"identifier": ALERT_ID, "addresses": None}
    reasons = body["extensions"]["policy"]["Alert"]
    assert reasons["addresses"]  # why the addressees are hidden

    rows = await _audit_rows(service)
    [row] = rows[len(before) :]
    assert (row["action"], row["owner"], row["record_type"]) == ("disclose", OWNER, "Alert")
    assert (row["org"], row["count"]) == ("110105001001", 1)
    assert "addresses" in row["decision"]

    # The owner's own staff reading is no disclosure to another organisation: no row.
    await service.department.data(ALERTS)
    assert len(await _audit_rows(service)) == len(rows)

    # `linli audit verify` against the adapter's database: the chain holds every row.
    result = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).parent / "linli"), "audit", "verify", "--database-url",
         service.db.url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"chain intact: {len(rows)} rows" in result.stdout


async def test_emergency_declared_at_the_adapter_widens_sharing_until_it_ends(
    service: RunningAdapter,
) -> None:
    async def addresses() -> str | None:
        value: str | None = _shown(await service.community.post(ALERTS))["addresses"]
        return value

    assert await addresses() is None
    declarer = GraphQLClient(service.url, DECLARER_TOKEN)
    variables = {"level": "III", "reason": "暴雨", "at": _in(3600)}
    try:
        # Only a department of the adapter's district with emergency:declare may declare.
        assert await service.community.error_code(DECLARE, variables) == "FORBIDDEN"
        assert await addresses() is None
        declared = (await declarer.data(DECLARE, variables))["declareEmergency"]
        assert declared["active"] is True
        assert declared["declaredByOrg"] == DECLARER

        assert await addresses() == "district-duty-office"
        body = await service.community.post(ALERTS)
        assert "addresses" not in body["extensions"].get("policy", {}).get("Alert", {})

        ended = (await declarer.data(END, {"id": declared["id"]}))["endEmergency"]
        assert ended["active"] is False
        assert await addresses() is None
    finally:
        await declarer.aclose()
    actions = [row["action"] for row in await _audit_rows(service)]
    assert "declare_emergency" in actions
    assert "end_emergency" in actions


async def test_well_known_document_is_the_one_model(service: RunningAdapter) -> None:
    async with httpx.AsyncClient(base_url=service.url, timeout=30.0) as client:
        document = WellKnown.model_validate((await client.get("/.well-known/linli-node")).json())
    assert document.kind is SourceKind.ADAPTER
    assert document.id == "adapter-test"
    assert document.division_code == OWNER
    assert document.district == "110105"
    assert document.capabilities == ["alerts"]
    assert document.adapter is not None
    assert document.adapter.system == "cap"
