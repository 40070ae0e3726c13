"""``sensorSeries`` at the hub: asked of the node that owns the sensor, on the caller's behalf.

The arguments are checked here first (``schema.api.series.check_series``: the same codes
as at the node); the node decides what the caller may see (its policy) and pages the
windows; its cursors pass through unchanged.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from hub.federation.codec import DecodeError, decode
from hub.federation.context import HubContext
from hub.federation.executor import SourceFailed
from hub.federation.reports import SourceStatus
from schema.api.pagination import Edge, PageInfo, page_size
from schema.api.series import SERIES_FIELD, SensorSeries, SeriesWindow, check_series
from schema.errors import InvalidInput, NotFound
from schema.ids import GlobalId, InvalidGlobalId
from schema.store.specs import SPECS

__all__ = ["series_field"]

_DOCUMENT = """query ($sensor: ID!, $from: DateTime!, $to: DateTime!, $windowS: Int!,
  $first: Int, $after: String) {
  sensorSeries(sensor: $sensor, from: $from, to: $to, windowS: $windowS, first: $first,
    after: $after) {
    edges { cursor node { start count min mean max downsampled } }
    pageInfo { hasNextPage endCursor } } }"""


def _connection(payload: dict[str, Any]) -> SensorSeries:
    try:
        edges = [
            Edge(cursor=str(edge["cursor"]), node=decode(SeriesWindow, edge["node"]))
            for edge in payload["edges"]
        ]
        info = payload["pageInfo"]
        page = PageInfo(has_next_page=bool(info["hasNextPage"]), end_cursor=info["endCursor"])
    except (DecodeError, KeyError, TypeError) as exc:
        raise DecodeError(f"answer does not fit the schema: {exc!r}") from exc
    return SensorSeries(edges=edges, page_info=page)


async def _sensor_series(
    info: Info[HubContext, None],
    sensor: strawberry.ID,
    start: Annotated[datetime, strawberry.argument(name="from")],
    end: Annotated[datetime, strawberry.argument(name="to")],
    window_s: int,
    first: int | None = None,
    after: str | None = None,
) -> SensorSeries:
    context = info.context
    spec = SPECS["Sensor"]
    context.require_read(spec)  # not asked of a node without a read scope
    check_series(start, end, window_s)
    size = page_size(first)
    try:
        parsed = GlobalId.parse(str(sensor))
    except InvalidGlobalId as exc:
        raise InvalidInput(str(exc), code="INVALID_ID", field="sensor") from exc
    if parsed.type != spec.type_name:
        raise InvalidInput(f"{sensor} is no Sensor id", code="INVALID_ID", field="sensor")
    federation = context.federation
    source = federation.owning_source(parsed.owner)
    if source is None:
        raise NotFound(f"no source holds {sensor}")
    variables = {
        "sensor": str(sensor),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "windowS": window_s,
        "first": size,
        "after": after,
    }
    reply = await federation.call(
        source, context.caller, _DOCUMENT, variables, time.monotonic() + federation.deadline_s,
        context.purpose, stale_key=None, field_name="sensorSeries",
    )  # fmt: skip
    report = reply.report
    context.add_reports([report], info.path.as_list())
    if reply.payload is None:
        if report.status is SourceStatus.NOT_FOUND:
            raise NotFound(f"no Sensor {sensor}")
        raise SourceFailed(report)
    try:
        found = _connection(reply.payload)
    except DecodeError as exc:
        report.status, report.message = SourceStatus.ERROR, str(exc)
        raise SourceFailed(report) from exc
    report.count = len(found.edges)
    await federation.relay_audit(context.caller, spec.type_name, [report], context.purpose)
    return found


def series_field() -> dict[str, Any]:
    """``sensorSeries`` of the hub's query type."""
    return {
        SERIES_FIELD: strawberry.field(
            resolver=_sensor_series,
            description="A sensor's readings in [from, to) as windows of windowS seconds"
            " (count, min, mean, max), asked of its node; empty if the caller may not see its"
            " readings",
        )
    }
