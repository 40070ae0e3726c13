"""EDXL-RM at the hub: aid steps in and out as OASIS EDXL-RM 1.0 messages.

``POST /aid/inbox/edxl-rm`` takes one step as an EDXL-RM message
(``Content-Type: application/xml``) and handles it exactly as ``POST /aid/inbox``
handles the JSON a node's outbox sends: the caller must be the sending party's
community with that party's scope (``aid:request`` for the requester,
``aid:respond`` for the provider), the step goes through the same state machine,
is applied once per message id, and is passed on to the other party's node.

``GET /aid/cases/{request_id}/steps/{number}/edxl-rm`` gives step ``number``
(from 1) of a request as an EDXL-RM message, to the parties and the district's
departments, as ``aidCase`` does; the hub never holds a commit's disclosure, so
the message carries none.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import col, select

from adapters.edxl_rm import EDXL_RM_CONTENT_TYPE, parse_step, write_step
from hub.aid import service
from hub.aid.component import HubAid, require_view
from hub.aid.tables import AidCaseRow
from schema.aid import AidStep
from schema.errors import InvalidInput, NotFound

__all__ = ["XML_MEDIA_TYPES", "edxl_rm_router"]

XML_MEDIA_TYPES = frozenset({"application/xml", "text/xml"})


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def edxl_rm_router(aid: HubAid) -> APIRouter:
    """The hub's EDXL-RM endpoints over the aid relay ``aid``."""
    router = APIRouter()

    @router.post("/aid/inbox/edxl-rm")
    async def aid_inbox_edxl_rm(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        content_type: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        caller = await aid.authenticate(authorization)
        if _media_type(content_type) not in XML_MEDIA_TYPES:
            raise InvalidInput(
                f"an EDXL-RM message is sent as application/xml, not {content_type or '(none)'}",
                code="UNSUPPORTED_MEDIA_TYPE",
                field="(content-type)",
                allowed=sorted(XML_MEDIA_TYPES),
            )
        step = parse_step(await request.body())
        return JSONResponse(await aid.deliver(step, caller))

    @router.get("/aid/cases/{request_id}/steps/{number}/edxl-rm")
    async def aid_step_edxl_rm(
        request_id: str, number: int, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        caller = await aid.authenticate(authorization)
        require_view(caller)
        async with aid.db.sessions() as session:
            case = (
                await session.execute(
                    select(AidCaseRow).where(
                        col(AidCaseRow.request_id) == request_id,
                        service.visible_cases(caller),
                    )
                )
            ).scalar_one_or_none()
        if case is None:
            raise NotFound(f"no aid request {request_id} you may see", type="AidRequest")
        steps = service.shown_steps(case, caller)
        if not 1 <= number <= len(steps):
            raise NotFound(
                f"{request_id} has {len(steps)} step(s), not a step {number}",
                type="AidStep",
                steps=len(steps),
            )
        step = AidStep.model_validate(steps[number - 1])
        return Response(write_step(step), media_type=EDXL_RM_CONTENT_TYPE)

    return router
