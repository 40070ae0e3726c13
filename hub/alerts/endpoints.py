"""CAP 1.2 out: the hub's federated active public alerts as an ATOM feed and as CAP XML.

The hub asks its sources as the public would (a token naming an organisation of
kind ``public`` with only ``alerts:read``), so each owner's policy decides what
the feed may show, and keeps only ``Actual`` alerts of scope ``Public``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter
from fastapi.responses import Response

from adapters.cap import (
    ATOM_CONTENT_TYPE,
    CAP_CONTENT_TYPE,
    CapError,
    write_alert,
    write_atom_feed,
)
from hub.federation.executor import Federation, PageRequest
from hub.federation.reports import SourceStatus
from hub.settings import HubSettings
from policies.caller import Caller
from schema.api.pagination import RecordOrder
from schema.enums import CapMsgType, CapScope, CapStatus, OrgKind
from schema.records import AlertCreate
from schema.runtime.http import error_body
from schema.scopes import Scope
from schema.store.specs import SPECS

__all__ = ["alerts_router", "public_alerts"]

log = logging.getLogger("linli.hub.alerts")

FEED_LIMIT = 500
_NAME_VALUE = "{ valueName value }"
SELECTION = (
    "{ id owner version createdAt updatedAt identifier sender sent status msgType source scope "
    "restriction addresses codes note references incidents active infos { language categories "
    f"event responseTypes urgency severity certainty audience eventCodes {_NAME_VALUE} effective "
    "onset expires senderName headline description instruction web contact "
    f"parameters {_NAME_VALUE} resources {{ resourceDesc mimeType size uri derefUri digest }} "
    f"areas {{ areaDesc polygons circles geocodes {_NAME_VALUE} altitude ceiling "
    "geometry { type coordinates } } } }"
)


def public_caller(settings: HubSettings) -> Caller:
    """Who the hub is when it reads alerts for everyone."""
    return Caller(
        org="public",
        org_kind=OrgKind.PUBLIC,
        scopes=frozenset({Scope.ALERTS_READ}),
        client_id=settings.hub_id,
        subject="public",
        district=settings.district,
    )


async def public_alerts(federation: Federation, settings: HubSettings) -> list[AlertCreate]:
    """The active, actual, public alerts of every source, newest first."""
    spec = SPECS["Alert"]
    request = PageRequest(
        caller=public_caller(settings),
        where={"activeOnly": True, "statuses": ["ACTUAL"]},
        first=FEED_LIMIT,
        after=None,
        order=RecordOrder.UPDATED_DESC,
        selection=SELECTION,
        purpose=None,  # a public caller: a purpose would unlock nothing
        audited=False,  # the public feed has never been written to the relay audit
    )
    page = await federation.list_page(spec, request)
    for report in page.reports:
        if report.status is not SourceStatus.OK:
            log.warning("alert feed: source %s %s", report.source, report.status)
    alerts = []
    for _, node in page.edges:
        public: Any = node.to_pydantic()
        if not public.active or public.scope is not CapScope.PUBLIC:
            continue
        if public.status is not CapStatus.ACTUAL or public.msg_type not in (
            CapMsgType.ALERT,
            CapMsgType.UPDATE,
        ):
            continue
        values = {name: getattr(public, name) for name in AlertCreate.model_fields}
        alerts.append(AlertCreate.model_validate(values))
    return sorted(alerts, key=lambda a: a.sent, reverse=True)


def alerts_router(federation: Federation, settings: HubSettings) -> APIRouter:
    """``GET /alerts.atom`` and ``GET /alerts/{identifier}.xml`` (no token needed)."""
    router = APIRouter()
    base = settings.issuer.rstrip("/")

    async def servable() -> list[AlertCreate]:
        kept = []
        for alert in await public_alerts(federation, settings):
            try:
                write_alert(alert)  # list only what can be served as valid CAP 1.2
            except CapError as error:
                log.warning("alert %s cannot be written as CAP: %s", alert.identifier, error)
                continue
            kept.append(alert)
        return kept

    @router.get("/alerts.atom", include_in_schema=False)
    async def alerts_atom() -> Response:
        alerts = await servable()
        updated = max((a.sent for a in alerts), default=datetime.now(UTC))
        body = write_atom_feed(
            alerts,
            feed_id=f"{base}/alerts.atom",
            title=f"{settings.hub_name}: active public alerts",
            updated=updated,
            link_base=f"{base}/alerts",
        )
        return Response(body, media_type=ATOM_CONTENT_TYPE)

    @router.get("/alerts/{name}", include_in_schema=False)
    async def alert_xml(name: str) -> Response:
        wanted = {unquote(name), unquote(name).removesuffix(".xml")}
        for alert in await servable():
            if alert.identifier in wanted:
                return Response(write_alert(alert), media_type=CAP_CONTENT_TYPE)
        return Response(
            error_body("NOT_FOUND", f"no active public alert {name[:100]}"),
            status_code=404,
            media_type="application/json",
        )

    return router
