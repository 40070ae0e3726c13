"""``POST /sensors/readings``: a device sends a SenML pack over HTTP, with its own bearer token.

The token must carry ``sensors:write`` and name this node's organisation; the
device is its OAuth client id. The answer is the ``IngestResult``: HTTP 200
with one outcome per record (some may be refused, each with its code), 400 for
a body that is no SenML pack, 413 above the body limit, 429 with
``Retry-After`` when the node is busy storing other packs (nothing of this one
was stored: send it again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from node.sensors.errors import IngestBusy
from node.sensors.ingest import ingest
from node.sensors.models import Device
from node.sensors.service import SensorStore
from policies.caller import Caller
from schema.errors import Forbidden
from schema.runtime.http import error_body
from schema.scopes import Scope

__all__ = ["WRITE_SCOPE", "readings_router"]

WRITE_SCOPE = Scope.SENSORS_WRITE

Authenticate = Callable[[str | None], Awaitable[Caller]]


def device_of(caller: Caller, org: str) -> Device:
    """The device a caller is, if it may send readings here; else ``Forbidden``."""
    if not caller.has_scope(WRITE_SCOPE):
        raise Forbidden(
            f"sending readings needs the scope {WRITE_SCOPE!r}", scope=WRITE_SCOPE.value
        )
    if caller.actor is not None:
        raise Forbidden("a device sends its readings itself, not through the hub", reason="ACTOR")
    if caller.org != org:
        raise Forbidden(f"only devices of {org} send readings here", reason="OTHER_ORGANISATION")
    return Device(org=caller.org, client_id=caller.client_id)


def readings_router(authenticate: Authenticate, store: SensorStore) -> APIRouter:
    """``POST /sensors/readings``."""
    router = APIRouter()

    @router.post("/sensors/readings")
    async def readings(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        caller = await authenticate(authorization)
        device = device_of(caller, store.settings.org_code)
        body = await request.body()
        try:
            result = await ingest(store, device, body)
        except IngestBusy as busy:
            wait = busy.details.get("retryAfter", 1)
            return Response(
                error_body(busy.code, busy.message, busy.extensions),
                status_code=429,
                media_type="application/json",
                headers={"Retry-After": str(wait)},
            )
        return JSONResponse(result.as_json())

    return router
