"""``POST /flags/updates``: the hub tells the node how its flags fare (contract: ``hub.flags``).

Only the district's hub may call it: a token this node's issuer signed for
this node (``aud``), with ``org_kind`` hub, ``org`` = the node's district and
scope ``risk:verify``. Each ``message_id`` is processed once; an update with
no more transitions than the node already has is older than what the node
shows and changes nothing, so the node never goes backwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from node.flags.tables import FlagTables
from node.settings import NodeSettings
from policies.caller import Caller
from schema.enums import OrgKind, RiskFlagStatus
from schema.errors import Forbidden, InvalidInput, NotFound, StaleVersion
from schema.ids import GlobalId, InvalidGlobalId
from schema.records import FlagTransition, RiskFlagHop
from schema.runtime.db import Database
from schema.runtime.http import json_body
from schema.scopes import Scope
from schema.storage import utcnow
from schema.store.specs import RecordSpec

__all__ = ["FlagUpdate", "UpdateResult", "apply_update", "check_hub_caller", "updates_router"]

VERIFY_SCOPE = Scope.RISK_VERIFY
MAX_TRANSITIONS = 200

Authenticate = Callable[[str | None], Awaitable[Caller]]


class FlagUpdate(BaseModel):
    """The body of ``POST /flags/updates``."""

    model_config = ConfigDict(extra="ignore")

    message_id: uuid.UUID
    flag_id: str = Field(max_length=200)
    status: RiskFlagStatus
    transitions: list[FlagTransition] = Field(max_length=MAX_TRANSITIONS)
    assigned_to: str | None = Field(default=None, max_length=64)
    timeline: dict[str, AwareDatetime] = Field(default_factory=dict, max_length=MAX_TRANSITIONS)


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """``applied`` (the flag changed), ``ignored`` (older than the node's) or ``duplicate``."""

    status: Literal["applied", "ignored", "duplicate"]
    flag_id: str
    version: int | None = None


def check_hub_caller(caller: Caller, settings: NodeSettings, scope: str = VERIFY_SCOPE) -> None:
    """Pass if ``caller`` is this node's district hub with ``scope``; else ``Forbidden``."""
    if caller.org_kind is not OrgKind.HUB:
        raise Forbidden("only the district hub may send flag updates", reason="NOT_HUB")
    if caller.org != settings.district:
        raise Forbidden(
            "only the hub of this node's district may send flag updates", reason="OTHER_DISTRICT"
        )
    if not caller.has_scope(scope):
        raise Forbidden(
            f"messages from the hub need the scope {scope!r}",
            reason="SCOPE_MISSING",
            scope=scope,
        )


def _local_id(flag_id: str, source_id: str) -> str:
    try:
        parsed = GlobalId.parse(flag_id)
    except InvalidGlobalId as exc:
        raise InvalidInput(str(exc), code="INVALID_ID", field="flag_id") from exc
    if parsed.type != "RiskFlag" or parsed.owner != source_id:
        raise NotFound(f"no RiskFlag with id {flag_id}", type="RiskFlag")
    return parsed.local


def _hops(timeline: dict[str, Any]) -> list[RiskFlagHop]:
    hops = [RiskFlagHop(hop=hop, at=at) for hop, at in timeline.items()]
    return sorted(hops, key=lambda h: (h.at, h.hop))


async def apply_update(
    session: AsyncSession,
    tables: FlagTables,
    spec: RecordSpec,
    update: FlagUpdate,
    *,
    source_id: str,
) -> UpdateResult:
    """Apply one update to the node's flag, once per message id, never backwards. Flushes."""
    message_id = str(update.message_id)
    seen = await session.execute(
        sa.select(tables.updates.c.message_id).where(tables.updates.c.message_id == message_id)
    )
    if seen.first() is not None:
        return UpdateResult("duplicate", update.flag_id)
    local = _local_id(update.flag_id, source_id)
    table: Any = spec.table
    row = await session.get(table, local, populate_existing=True)
    if row is None or row.retired_at is not None:
        raise NotFound(f"no RiskFlag with id {update.flag_id}", type="RiskFlag")
    newer = len(update.transitions) > len(row.transitions)
    if newer:
        result = await session.execute(
            sa.update(table)
            .where(table.id == local, table.version == row.version)
            .values(
                status=update.status,
                transitions=update.transitions,
                assigned_to=update.assigned_to,
                timeline=_hops(update.timeline),
                version=row.version + 1,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        if result.rowcount != 1:
            # Another update of this flag committed meanwhile: the hub retries this one.
            raise StaleVersion(
                f"RiskFlag {local} changed while this update was applied",
                currentVersion=row.version + 1,
            )
    await session.execute(
        sa.insert(tables.updates).values(
            message_id=message_id,
            flag_id=update.flag_id,
            status=update.status.value,
            outcome="applied" if newer else "ignored",
            received_at=utcnow(),
        )
    )
    version = row.version + 1 if newer else row.version
    return UpdateResult("applied" if newer else "ignored", update.flag_id, version)


def updates_router(
    authenticate: Authenticate,
    db: Database,
    tables: FlagTables,
    spec: RecordSpec,
    settings: NodeSettings,
) -> APIRouter:
    """``POST /flags/updates``."""
    router = APIRouter()

    @router.post("/flags/updates")
    async def flag_updates(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        caller = await authenticate(authorization)
        check_hub_caller(caller, settings)
        body = await json_body(request)
        try:
            update = FlagUpdate.model_validate(body)
        except ValidationError as exc:
            raise InvalidInput.from_validation(exc) from exc
        try:
            async with db.transaction() as session:
                result = await apply_update(
                    session, tables, spec, update, source_id=settings.source_id
                )
        except IntegrityError:
            # The same message delivered twice at once: the other one applied it.
            result = UpdateResult("duplicate", update.flag_id)
        body = {"status": result.status, "flag_id": result.flag_id}
        if result.version is not None:
            body["version"] = result.version
        return JSONResponse(body)

    return router
