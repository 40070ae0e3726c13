"""Raising a flag writes the flag and its outbox row in one transaction; who may raise."""

from __future__ import annotations

from datetime import datetime

import pytest

import node.flags.outbox
from tests.node.flags.conftest import (
    COMMUNITY,
    RAISE,
    READER_TOKEN,
    STAFF_TOKEN,
    FlagRig,
    flag_input,
)

OUTBOX = "{ flagOutbox { delivering pending delivered failed entries { flagId status attempts } } }"


async def counts(rig: FlagRig) -> tuple[int, int]:
    flags = await rig.node_sql("SELECT count(*) FROM risk_flags")
    rows = await rig.node_sql("SELECT count(*) FROM flag_outbox")
    return flags[0][0], rows[0][0]


async def test_raise_writes_the_flag_and_its_outbox_row_together(
    rig: FlagRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.start_node(deliver=False)  # no hub: the row waits in the outbox
    staff = rig.staff()
    raised = (await staff.data(RAISE, {"i": flag_input(1)}))["raiseRiskFlag"]
    assert raised["status"] == "RAISED"
    assert raised["id"].startswith(f"RiskFlag:{COMMUNITY}:")

    [row] = await rig.outbox()
    assert (row.kind, row.status, row.attempts, row.flag_id) == (
        "flag.raised",
        "pending",
        0,
        raised["id"],
    )
    message = row.payload
    assert set(message) == {"message_id", "kind", "flag", "raised_at"}  # sent_at: per attempt
    assert message["message_id"] == row.message_id
    flag = message["flag"]
    assert flag["id"] == raised["id"]
    assert flag["owner"] == COMMUNITY
    assert flag["category"] == "gas_leak"
    assert flag["location"] == {"type": "Point", "coordinates": [116.4435, 39.9087]}
    assert flag["status"] == "raised"
    assert [t["status"] for t in flag["transitions"]] == ["raised"]
    assert datetime.fromisoformat(message["raised_at"]) == datetime.fromisoformat(
        flag["transitions"][0]["at"]
    )
    assert datetime.fromisoformat(message["raised_at"]).tzinfo is not None

    # The outbox insert fails (a message id that exists): the flag is not stored either.
    monkeypatch.setattr(node.flags.outbox, "new_message_id", lambda: row.message_id)
    assert await staff.error_code(RAISE, {"i": flag_input(2)}) == "INTERNAL"
    assert await counts(rig) == (1, 1)
    listed = await staff.data("{ riskFlags { edges { node { id } } } }")
    assert [e["node"]["id"] for e in listed["riskFlags"]["edges"]] == [raised["id"]]

    monkeypatch.undo()
    await staff.data(RAISE, {"i": flag_input(3)})
    assert await counts(rig) == (2, 2)
    seen = (await staff.data(OUTBOX))["flagOutbox"]
    assert (seen["delivering"], seen["pending"], seen["delivered"], seen["failed"]) == (
        False,
        2,
        0,
        0,
    )


async def test_risk_flag_scope_raises_flags_but_changes_nothing_else(rig: FlagRig) -> None:
    rig.start_node(deliver=False)
    staff = rig.client(STAFF_TOKEN)  # own staff with risk:flag, without records:write
    await staff.data(RAISE, {"i": flag_input(1)})
    resource = """mutation { createResource(input: {kind: "portable_generator", name: "发电机",
        quantity: 1, available: 1, unit: "台", location: {coordinates: [116.44, 39.9]}}) { id } }"""
    assert await staff.error_code(resource) == "FORBIDDEN"
    assert (await rig.node_sql("SELECT count(*) FROM resources"))[0][0] == 0

    reader = rig.client(READER_TOKEN)  # own staff with neither scope
    body = await reader.post(RAISE, {"i": flag_input(2)})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["extensions"]["scope"] == ["records:write", "risk:flag"]
    assert await reader.error_code(OUTBOX) == "FORBIDDEN"
    assert await counts(rig) == (1, 1)
