"""Aid steps as EDXL-RM 1.0 messages at a real hub, with two real community nodes.

A requests B's generator at its node and B offers at its node (the GraphQL path); the hub
gives each step back as an EDXL-RM message that reads as the very step it relayed, and
the same message posted again is recognised as a duplicate. A request posted to the hub
as EDXL-RM is handled as the nodes' JSON steps are: B's node receives it. Scopes, the
sender's identity, hostile XML and steps out of order are refused as for the JSON inbox.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.edxl_rm import MSG_NAMESPACE, parse_step, write_step
from schema.aid import AidStep, AidStepKind
from schema.enums import OrgKind
from tests.conftest import BACKENDS
from tests.e2e.aid_rig import A, AidRig, B, aid_rig
from tests.e2e.test_aid_journey import STEP, find_and_request, start, status_at
from tests.hub.flags.conftest import eventually

HUB_CASE = """query ($r: ID!) { aidCase(requestId: $r) { status steps } }"""
XML = {"content-type": "application/xml"}
C = "110105003001"  # a third community, party to nothing


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AidRig]:
    async with aid_rig(request.param, tmp_path) as built:
        yield built


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def hub_case(rig: AidRig, request_id: str, status: str) -> dict[str, Any]:
    """The hub's case once it reaches ``status``, seen by a district department."""
    assert rig.hub is not None
    department = await rig.hub.graphql(org="110105400003", kind=OrgKind.DEPARTMENT,
                                       scopes="risk:verify")  # fmt: skip

    async def reached() -> dict[str, Any] | None:
        case: dict[str, Any] | None = (await department.data(HUB_CASE, {"r": request_id}))[
            "aidCase"
        ]
        return case if case is not None and case["status"] == status else None

    found: dict[str, Any] = await eventually(reached, timeout_s=30)
    return found


def request_step(request_id: str, **changes: Any) -> AidStep:
    fields: dict[str, Any] = {
        "message_id": uuid.uuid4(),
        "kind": AidStepKind.REQUEST,
        "request_id": request_id,
        "requester": A,
        "provider": B,
        "sender": A,
        "resource_kind": "drinking_water",
        "quantity": 20,
        "unit": "箱",
        "note": "安置点缺饮用水，今晚需要 Water for the shelter tonight",
        "needed_by": datetime.now(UTC) + timedelta(hours=6),
        "at": datetime.now(UTC),
    }
    return AidStep(**(fields | changes))


def expect_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    extensions: dict[str, Any] = response.json()["errors"][0]["extensions"]
    assert extensions["code"] == code, extensions
    return extensions


async def test_steps_go_in_and_out_of_the_hub_as_edxl_rm(rig: AidRig) -> None:
    a_at_hub = await start(rig)
    assert rig.hub is not None
    hub = rig.hub
    a_token = await hub.client_token(org=A, kind=OrgKind.COMMUNITY, scopes="aid:request")
    b_token = await hub.client_token(org=B, kind=OrgKind.COMMUNITY, scopes="aid:respond")
    c_token = await hub.client_token(org=C, kind=OrgKind.COMMUNITY, scopes="aid:request")
    b = rig.staff(B)
    async with httpx.AsyncClient(base_url=hub.url, timeout=30.0) as http:
        # --- out: the steps taken through the nodes' GraphQL, as EDXL-RM messages
        resource_id, request_id = await find_and_request(rig, a_at_hub)
        await status_at(b, request_id, "REQUESTED")
        await b.data(STEP, {"r": request_id, "k": "OFFER", "q": 1, "res": resource_id})
        await hub_case(rig, request_id, "OFFERED")
        # A party reads the steps in full (place and note are the parties' only).
        case = (await a_at_hub.data(HUB_CASE, {"r": request_id}))["aidCase"]
        relayed = [AidStep.model_validate(entry) for entry in case["steps"]]
        assert [s.kind for s in relayed] == [AidStepKind.REQUEST, AidStepKind.OFFER]
        messages = []
        for number, expected in enumerate(relayed, 1):
            response = await http.get(
                f"/aid/cases/{request_id}/steps/{number}/edxl-rm", headers=bearer(a_token)
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/xml; charset=utf-8"
            assert f'xmlns="{MSG_NAMESPACE}"'.encode() in response.content
            assert parse_step(response.content) == expected
            messages.append(response.content)
        assert b"<RequestResource" in messages[0]
        assert b"<ResponseToRequestResource" in messages[1]
        # The request's purpose travels as its MessageDescription, in UTF-8.
        assert "电梯困人救援".encode() in messages[0]

        # The offer's message, posted back by B, is the same step: a duplicate, nothing moves.
        response = await http.post(
            "/aid/inbox/edxl-rm", content=messages[1], headers=bearer(b_token) | XML
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "duplicate"

        # Who may read: the parties and departments; another community sees nothing.
        response = await http.get(
            f"/aid/cases/{request_id}/steps/1/edxl-rm", headers=bearer(c_token)
        )
        expect_error(response, 404, "NOT_FOUND")
        response = await http.get(
            f"/aid/cases/{request_id}/steps/3/edxl-rm", headers=bearer(a_token)
        )
        assert expect_error(response, 404, "NOT_FOUND")["steps"] == 2
        response = await http.get(f"/aid/cases/{request_id}/steps/1/edxl-rm")
        expect_error(response, 401, "UNAUTHENTICATED")

        # A step out of order (a receipt before any dispatch) does not move the case.
        receive = relayed[0].model_copy(
            update={
                "message_id": uuid.uuid4(),
                "kind": AidStepKind.RECEIVE,
                "quantity": 1,
                "at": datetime.now(UTC),
                "needed_by": None,
            }
        )
        response = await http.post(
            "/aid/inbox/edxl-rm", content=write_step(receive), headers=bearer(a_token) | XML
        )
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "ignored"
        assert (await a_at_hub.data(HUB_CASE, {"r": request_id}))["aidCase"] == case

        # --- in: a request sent to the hub as EDXL-RM reaches B's node like any other
        new_id = f"AidRequest:{A}:edxl-rm-1"
        step = request_step(new_id)
        body = write_step(step)

        refusals = [
            # A's community without aid:request; B posing as A; C posing as A.
            (await hub.client_token(org=A, kind=OrgKind.COMMUNITY, scopes="risk:flag"),
             body, XML, 403, "FORBIDDEN"),
            (b_token, body, XML, 403, "FORBIDDEN"),
            (c_token, body, XML, 403, "FORBIDDEN"),
            (a_token, body, {"content-type": "text/plain"}, 400, "UNSUPPORTED_MEDIA_TYPE"),
            (a_token, b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>', XML,
             400, "XML_FORBIDDEN"),
            (a_token, body.replace(MSG_NAMESPACE.encode(), b"urn:example:rm"), XML, 400,
             "EDXL_RM_WRONG_NAMESPACE"),
            (a_token, body.replace(b"<SentDateTime>", b"<Sent>").replace(
                b"</SentDateTime>", b"</Sent>"), XML, 400, "EDXL_RM_INVALID"),
            (a_token, body.replace(b"drinking_water", b"unicorn_dust"), XML, 400,
             "EDXL_RM_NOT_A_STEP"),
        ]  # fmt: skip
        for token, content, headers, status, code in refusals:
            response = await http.post(
                "/aid/inbox/edxl-rm", content=content, headers=bearer(token) | headers
            )
            expect_error(response, status, code)
        assert await rig.hub_sql("SELECT request_id FROM aid_cases WHERE request_id = :r",
                                 r=new_id) == []  # fmt: skip

        response = await http.post(
            "/aid/inbox/edxl-rm", content=body, headers=bearer(a_token) | XML
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "accepted", "outcome": "applied",
                                   "request_id": new_id}  # fmt: skip
        again = await http.post("/aid/inbox/edxl-rm", content=body, headers=bearer(a_token) | XML)
        assert again.json()["status"] == "duplicate"

        at_b = await status_at(b, new_id, "REQUESTED")  # delivered by the hub's node outbox
        assert [s["message_id"] for s in at_b["steps"]] == [str(step.message_id)]
        response = await http.get(f"/aid/cases/{new_id}/steps/1/edxl-rm", headers=bearer(b_token))
        assert response.status_code == 200, response.text
        assert parse_step(response.content) == step  # in and out, the same step
