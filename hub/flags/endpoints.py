"""``POST /flags/inbox``: community nodes deliver their new flags here (store-and-forward)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from hub.flags.service import Received
from policies.caller import Caller
from schema.runtime.http import json_body

__all__ = ["inbox_router"]

Authenticate = Callable[[str | None], Awaitable[Caller]]
Receive = Callable[[Any, Caller], Awaitable[Received]]


def inbox_router(authenticate: Authenticate, receive: Receive) -> APIRouter:
    """The inbox: authenticate, validate, store once, route; answer accepted or duplicate."""
    router = APIRouter()

    @router.post("/flags/inbox")
    async def inbox(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        caller = await authenticate(authorization)
        body = await json_body(request)
        received = await receive(body, caller)
        return JSONResponse({"status": received.status, "flag_id": received.flag_id})

    return router
