"""``resendFlagOutboxEntry``: staff send a flag the hub refused for good once more."""

from __future__ import annotations

from typing import Any

from tests.node.flags.conftest import (
    RAISE,
    READER_TOKEN,
    FlagRig,
    eventually,
    flag_input,
)

RESEND = """mutation ($id: Int!) { resendFlagOutboxEntry(id: $id) {
  id flagId status attempts nextAttemptAt lastError } }"""


async def test_a_refused_flag_is_sent_again_by_staff_and_arrives(rig: FlagRig) -> None:
    await rig.start_hub(max_body_bytes=1024)  # too small for the long flag: 413, for good
    rig.start_node()
    staff = rig.staff()
    long_input = {**flag_input(1), "description": "燃气味很浓，请尽快处理。" * 60}
    long_id = (await staff.data(RAISE, {"i": long_input}))["raiseRiskFlag"]["id"]
    [short_id] = await rig.raise_flags(1, start=2)  # not held up by the refused one

    async def settled() -> list[Any] | None:
        rows = await rig.outbox()
        return rows if [r.status for r in rows] == ["failed", "delivered"] else None

    failed = (await eventually(settled, timeout_s=15))[0]
    assert failed.flag_id == long_id
    assert failed.last_error.startswith("HTTP 413 BODY_TOO_LARGE")

    # The hub's limit is raised; nothing sends the failed entry until staff ask.
    await rig.stop_hub()
    await rig.start_hub()
    reader = rig.client(READER_TOKEN)  # this community's, without records:write or risk:flag
    assert await reader.error_code(RESEND, {"id": failed.id}) == "FORBIDDEN"
    assert (await rig.outbox())[0].status == "failed"

    resent = (await staff.data(RESEND, {"id": failed.id}))["resendFlagOutboxEntry"]
    assert resent["id"] == failed.id
    assert resent["flagId"] == long_id
    assert resent["status"] == "PENDING"
    assert resent["nextAttemptAt"] is not None
    assert resent["attempts"] == 1

    async def delivered() -> Any:
        row = (await rig.outbox())[0]
        return row if row.status == "delivered" else None

    row = await eventually(delivered, timeout_s=15)
    assert row.attempts == 2
    assert row.last_error is None
    assert row.message_id == failed.message_id  # the same message: the hub drops repeats by it
    assert await rig.hub_raised_order() == [short_id, long_id]

    body = await staff.post(RESEND, {"id": failed.id})
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {
        "code": "OUTBOX_ENTRY_NOT_FAILED",
        "id": failed.id,
        "status": "DELIVERED",
    }


async def test_resending_an_unknown_or_pending_entry_is_refused_and_changes_nothing(
    rig: FlagRig,
) -> None:
    rig.start_node(deliver=False)
    await rig.raise_flags(1)
    staff = rig.staff()
    before = await rig.outbox()

    body = await staff.post(RESEND, {"id": before[0].id + 100})
    assert body["errors"][0]["extensions"] == {"code": "NOT_FOUND", "id": before[0].id + 100}
    body = await staff.post(RESEND, {"id": before[0].id})
    assert body["errors"][0]["extensions"] == {
        "code": "OUTBOX_ENTRY_NOT_FAILED",
        "id": before[0].id,
        "status": "PENDING",
    }
    assert await rig.outbox() == before
