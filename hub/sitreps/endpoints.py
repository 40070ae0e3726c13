"""HTTP endpoints of situation reports: the inbox from hubs below, JSON and DOCX of a report."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from hub.sitreps.document import DOCX_MEDIA_TYPE, report_docx
from hub.sitreps.service import Received
from hub.sitreps.tables import SitrepRow, SitrepVersionRow
from policies.caller import Caller
from schema.errors import NotFound
from schema.runtime.http import json_body

__all__ = ["sitrep_router"]

Authenticate = Callable[[str | None], Awaitable[Caller]]
Receive = Callable[[Any, Caller], Awaitable[Received]]
Read = Callable[[Caller, str], Awaitable[tuple[SitrepRow, list[SitrepVersionRow], dict[str, Any]]]]


def sitrep_router(authenticate: Authenticate, receive: Receive, read: Read) -> APIRouter:
    """``POST /sitreps/inbox``, ``GET /sitreps/{id}``, ``GET /sitreps/{id}/document.docx``."""
    router = APIRouter()

    @router.post("/sitreps/inbox")
    async def inbox(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        caller = await authenticate(authorization)
        body = await json_body(request)
        received = await receive(body, caller)
        return JSONResponse(
            {
                "status": received.status,
                "report_id": received.report.id,
                "version": received.report.version,
            }
        )

    @router.get("/sitreps/{report_id}")
    async def report(
        report_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        caller = await authenticate(authorization)
        _, versions, body = await read(caller, report_id)
        return JSONResponse(
            {**body, "versions": [{"version": v.version, **v.body} for v in versions]}
        )

    @router.get("/sitreps/{report_id}/document.docx")
    async def document(
        report_id: str,
        version: int | None = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        caller = await authenticate(authorization)
        row, versions, body = await read(caller, report_id)
        if version is not None:
            chosen = next((v for v in versions if v.version == version), None)
            if chosen is None:
                raise NotFound(f"{report_id} has no version {version}")
            body = chosen.body
        name = f"sitrep-{row.kind}-v{body['version']}.docx"
        return Response(
            report_docx(body),
            media_type=DOCX_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return router
