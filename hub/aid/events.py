"""The GraphQL type of an aid event, and its JSON form for webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from hub.aid.tables import AidEventRow
from schema.enums import AidRequestStatus
from schema.runtime.graphql import graphql_json

__all__ = ["AidEvent", "aid_event_json"]


@strawberry.type(description="A change of an aid request, numbered; resume with after: seq")
class AidEvent:
    seq: int
    type: str = strawberry.field(description="aid.<step kind>: aid.request, aid.offer, ...")
    request_id: strawberry.ID
    status: AidRequestStatus
    requester: str
    provider: str
    resource_kind: str
    quantity: int | None
    at: datetime

    @classmethod
    def of(cls, row: AidEventRow) -> AidEvent:
        return cls(
            seq=row.seq,
            type=row.type,
            request_id=strawberry.ID(row.request_id),
            status=AidRequestStatus(row.status),
            requester=row.requester,
            provider=row.provider,
            resource_kind=row.resource_kind,
            quantity=row.quantity,
            at=row.at,
        )


def aid_event_json(row: AidEventRow) -> dict[str, Any]:
    """The JSON form of an event (webhook ``data``): exactly the GraphQL ``AidEvent``."""
    body: dict[str, Any] = graphql_json(AidEvent.of(row))
    return body
