"""An emergency declared at the hub reaches an adapter service, which widens sharing until it ends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from adapters.base import HttpFetcher
from adapters.cap import parse_alert, write_alert
from adapters.cap.client import CapSettings
from adapters.cap.service import CapAdapter
from schema.enums import OrgKind
from tests.adapters.conftest import DocumentServerState
from tests.conftest import CAP_SAMPLES
from tests.integration.conftest import ALERT_OWNER, COMMUNITY, Federated, wait_sources_ok

CAP_SOURCE = "adapter-cap"
ALERT_ID = "RELAYED-ALERT-1"
POLICY_FILE = """
@id("owner.emergency.alert-addressees")
permit (principal, action == Linli::Action::"read_exact", resource is Linli::Alert)
when { context.mode == "emergency" && resource.group == "contact" };
"""
ALERTS = "{ alerts(first: 50) { edges { node { identifier addresses } } } }"
DECLARE = """mutation($e: DateTime!) { declareEmergency(area: ["110105"], level: III,
  reason: "暴雨", expiresAt: $e) { source status emergencyId active message } }"""
END = "mutation($s: String!, $id: ID!) { endEmergency(source: $s, id: $id) { status active } }"


async def test_hub_relays_an_emergency_to_the_adapter_which_honours_it(
    upstream: tuple[DocumentServerState, str], federated: Any, tmp_path: Path
) -> None:
    state, base = upstream
    sample = (CAP_SAMPLES / "cap12-spec-appendix-a2.xml").read_bytes()
    alert = parse_alert(sample).model_copy(
        update={"identifier": ALERT_ID, "addresses": "district-duty-office"}
    )
    state.put("/alert.xml", write_alert(alert))
    policy = tmp_path / "owner.cedar"
    policy.write_text(POLICY_FILE, "utf-8")
    district: Federated = await federated(CAP_SOURCE)
    adapter = CapAdapter(
        CapSettings(sources=[f"{base}/alert.xml"], interval_s=0.2, timeout_s=30),
        HttpFetcher(httpx.AsyncClient(timeout=30.0), timeout_s=30, max_bytes=1 << 20),
    )
    await district.start_adapter(CAP_SOURCE, adapter, org_code=ALERT_OWNER, policy_file=str(policy))
    office = await district.reader(
        org="110105400001", kind=OrgKind.DEPARTMENT, scopes="alerts:read emergency:declare"
    )
    community = await district.reader(org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes="alerts:read")
    await wait_sources_ok(office, CAP_SOURCE)

    async def addresses() -> str | None:
        for _ in range(100):
            body = await community.post(ALERTS)
            shown = [
                e["node"] for e in body["data"]["alerts"]["edges"]
                if e["node"]["identifier"] == ALERT_ID
            ]  # fmt: skip
            if shown:
                value: str | None = shown[0]["addresses"]
                return value
            await asyncio.sleep(0.1)  # until the adapter has polled the alert in
        raise AssertionError(f"the alert never arrived: {body}")

    assert await addresses() is None
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    declared = (await office.data(DECLARE, {"e": expires}))["declareEmergency"]
    [answer] = [a for a in declared if a["source"] == CAP_SOURCE]
    assert answer["status"] == "ok", answer["message"]
    assert answer["active"] is True
    assert await addresses() == "district-duty-office"

    ended = await office.data(END, {"s": CAP_SOURCE, "id": answer["emergencyId"]})
    assert ended["endEmergency"] == {"status": "ok", "active": False}
    assert await addresses() is None
