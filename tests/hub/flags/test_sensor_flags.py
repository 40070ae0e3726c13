"""A sensor's flag at the hub inbox: its source and evidence kept, its clearing recorded once."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tests.hub.flags.conftest import COMMUNITY, OTHER_COMMUNITY, FlagsHub, flag_message

StartHub = Callable[..., Awaitable[FlagsHub]]
FLAG = """query ($id: ID!) { flag(id: $id) {
  status version source { sensor rule unit level } evidence { t v } timeline { hop at } } }"""
SOURCE = {"sensor": f"Sensor:{COMMUNITY}:s1", "rule": "high-water", "unit": "m", "level": 0.8}
EVIDENCE = [{"t": "2026-11-30T08:00:00+00:00", "v": 0.82}, {"t": "2026-11-30T08:02:00+00:00",
                                                             "v": 0.9}]  # fmt: skip


def cleared(flag_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()),
        "kind": "flag.cleared",
        "flag_id": flag_id,
        "cleared_at": "2026-11-30T08:10:00+00:00",
        "note": "cp-b2 rule high-water: the condition ended",
        "sent_at": datetime.now(UTC).isoformat(),
        **fields,
    }


async def test_a_sensor_flag_keeps_its_evidence_and_its_clearing_is_recorded_once(
    start_flags_hub: StartHub,
) -> None:
    hub = await start_flags_hub()
    token = await hub.community_token()
    message = flag_message(local="s0001", category="flooding", source=SOURCE, evidence=EVIDENCE)
    flag_id = message["flag"]["id"]
    assert (await hub.inbox(token, message)).status_code == 200
    department = await hub.graphql(await hub.department_token("110105400009"))
    shown = (await department.data(FLAG, {"id": flag_id}))["flag"]
    assert shown["source"] == SOURCE
    assert [e["v"] for e in shown["evidence"]] == [0.82, 0.9]

    events_before = await hub.count("flag_events")
    clear = cleared(flag_id)
    first = await hub.inbox(token, clear)
    assert first.json() == {"status": "accepted", "flag_id": flag_id}
    again = await hub.inbox(token, clear)
    assert again.json() == {"status": "duplicate", "flag_id": flag_id}
    assert await hub.count("flag_events") == events_before + 1
    shown = (await department.data(FLAG, {"id": flag_id}))["flag"]
    assert shown["status"] == "ROUTED"  # only the department resolves it
    hops = {hop["hop"]: hop["at"] for hop in shown["timeline"]}
    assert hops["condition_cleared"].startswith("2026-11-30T08:10:00")


async def test_a_clearing_of_an_unknown_or_foreign_flag_is_refused(
    start_flags_hub: StartHub,
) -> None:
    hub = await start_flags_hub()
    token = await hub.community_token()
    unknown = await hub.inbox(token, cleared(f"RiskFlag:{COMMUNITY}:nope"))
    assert unknown.status_code == 400  # the node marks it failed instead of retrying forever
    assert unknown.json()["errors"][0]["extensions"]["code"] == "UNKNOWN_FLAG"
    foreign = await hub.inbox(token, cleared(f"RiskFlag:{OTHER_COMMUNITY}:x1"))
    assert foreign.status_code == 403
    malformed = await hub.inbox(token, cleared(f"RiskFlag:{COMMUNITY}:x1", cleared_at="later"))
    assert malformed.status_code == 400
    bad_evidence = flag_message(evidence=[{"t": "not a time", "v": 1}])
    refused = await hub.inbox(token, bad_evidence)
    assert refused.status_code == 400
    assert await hub.count("flags") == 0
