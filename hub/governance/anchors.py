"""The hub as witness of its sources' audit chains (the protocol: ``policies.anchors``).

``POST /audit/anchors``: a client of the organisation that owns a source
reports the ``(seq, hash)`` of the rows its chain gained since the last anchor.
The hub keeps them in ``audit_anchors``, records the report as one ``anchor``
row of its own chain (so its chain anchors the source's), and answers with a
checkpoint signed with its token signing key. A report that does not continue
exactly where the last one ended is refused with ``ANCHOR_CONFLICT``: an
anchored row is never replaced.

``GET /audit/anchors/{source}``: the signed checkpoint of the last anchored row
and the witnessed hashes, paged by ``after``; public, so anyone may verify.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request
from joserfc import jwt
from joserfc.jwk import ECKey
from pydantic import ValidationError

from hub.db import metadata
from hub.governance.audit import AUDIT_LOG
from policies.anchors import ANCHORS_PATH, CHECKPOINT_TYPE, MAX_ANCHOR_ROWS, AnchorReport
from policies.audit import AuditEntry, append
from policies.caller import Caller
from schema.errors import Forbidden, InvalidInput, LinliError, NotFound
from schema.runtime.db import Database
from schema.runtime.http import json_body

__all__ = [
    "AUDIT_ANCHORS",
    "AnchorConflict",
    "SigningKeys",
    "anchors_router",
    "checkpoint_signer",
]

AUDIT_ANCHORS = sa.Table(
    "audit_anchors",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("hub_seq", sa.BigInteger(), nullable=False),
    sa.Column("mac", sa.String(64), nullable=True),  # on the last row of each report
)

Authenticate = Callable[[str | None], Awaitable[Caller]]
OwnerOf = Callable[[str], str | None]
"""The organisation (division code) that owns a source, or None for an unknown source."""
Sign = Callable[[dict[str, Any]], Awaitable[str]]


class AnchorConflict(LinliError):
    """A report that does not continue where the source's last anchor ended."""

    code = "ANCHOR_CONFLICT"


class SigningKeys(Protocol):
    """The hub's token signing keys, as the key ring holds them."""

    @property
    def signing_key(self) -> ECKey: ...

    async def refresh_if_stale(self) -> None: ...


def checkpoint_signer(keys: SigningKeys, issuer: str) -> Sign:
    """Sign checkpoint claims as a JWT with the hub's current token signing key."""

    async def sign(claims: dict[str, Any]) -> str:
        await keys.refresh_if_stale()
        key = keys.signing_key
        header = {"typ": CHECKPOINT_TYPE, "alg": "ES256", "kid": key.kid}
        payload = {"iss": issuer, "iat": int(time.time()), **claims}
        return jwt.encode(header, payload, key, algorithms=["ES256"])

    return sign


async def _last(db: Database, source: str) -> sa.Row[Any] | None:
    table = AUDIT_ANCHORS
    async with db.sessions() as session:
        result = await session.execute(
            sa.select(table).where(table.c.source == source).order_by(table.c.seq.desc()).limit(1)
        )
        return result.first()


async def _checkpoint(
    db: Database, sign: Sign, source: str, last: sa.Row[Any] | None
) -> str | None:
    if last is None:
        return None
    table = AUDIT_ANCHORS
    async with db.sessions() as session:
        # The rows of one report share the hub chain row that recorded it.
        first = (
            await session.execute(
                sa.select(sa.func.min(table.c.seq)).where(
                    table.c.source == source, table.c.hub_seq == last.hub_seq
                )
            )
        ).scalar_one()
    return await sign(
        {"source": source, "from": first, "seq": last.seq, "hash": last.hash, "mac": last.mac,
         "hub_seq": last.hub_seq}
    )  # fmt: skip


async def _record(db: Database, caller: Caller, report: AnchorReport) -> int:
    """Witness the report's rows and record it in the hub's chain; the chain row's seq."""
    first, last = report.rows[0][0], report.rows[-1][0]
    table = AUDIT_ANCHORS
    try:
        async with db.transaction() as session:
            anchored = (
                await session.execute(
                    sa.select(sa.func.max(table.c.seq)).where(table.c.source == report.source)
                )
            ).scalar() or 0
            if first != anchored + 1:
                raise AnchorConflict(
                    f"the anchor of {report.source} ends at seq {anchored}; a report must"
                    f" start at seq {anchored + 1}, not {first}",
                    expected_seq=anchored + 1,
                )
            entry = AuditEntry(
                action="anchor",
                owner=report.source,
                caller=caller,
                count=len(report.rows),
                decision={"from": first, "to": last, "hash": report.rows[-1][1], "mac": report.mac},
            )
            record = await append(session, AUDIT_LOG, entry)
            await session.execute(
                sa.insert(table),
                [
                    {
                        "source": report.source,
                        "seq": seq,
                        "hash": digest,
                        "hub_seq": record.seq,
                        "mac": report.mac if seq == last else None,
                    }
                    for seq, digest in report.rows
                ],
            )
    except sa.exc.IntegrityError:
        # Another report of the same rows committed first.
        raise AnchorConflict(
            f"rows of {report.source} from seq {first} were anchored meanwhile"
        ) from None
    return record.seq


def anchors_router(
    db: Database, authenticate: Authenticate, owner_of: OwnerOf, sign: Sign
) -> APIRouter:
    """``POST /audit/anchors`` and ``GET /audit/anchors/{source}``."""
    router = APIRouter()

    @router.post(ANCHORS_PATH)
    async def report_anchor(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        caller = await authenticate(authorization)
        body = await json_body(request)
        try:
            report = AnchorReport.model_validate(body)
        except ValidationError as exc:
            raise InvalidInput.from_validation(exc) from None
        owner = owner_of(report.source)
        if owner is None:
            raise NotFound(f"no source {report.source} here", source=report.source)
        if caller.org != owner:
            raise Forbidden(
                f"only a client of {owner} may anchor the audit log of {report.source}",
                source=report.source,
            )
        await _record(db, caller, report)
        last = await _last(db, report.source)
        assert last is not None
        return {
            "source": report.source,
            "seq": last.seq,
            "hash": last.hash,
            "checkpoint": await _checkpoint(db, sign, report.source, last),
        }

    @router.get(ANCHORS_PATH + "/{source}")
    async def witnessed(
        source: str,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_ANCHOR_ROWS)] = MAX_ANCHOR_ROWS,
    ) -> dict[str, Any]:
        last = await _last(db, source)
        table = AUDIT_ANCHORS
        async with db.sessions() as session:
            result = await session.execute(
                sa.select(table.c.seq, table.c.hash)
                .where(table.c.source == source, table.c.seq > after)
                .order_by(table.c.seq)
                .limit(limit + 1)
            )
            rows = [(row.seq, row.hash) for row in result]
        page = rows[:limit]
        return {
            "source": source,
            "head": {"seq": last.seq, "hash": last.hash} if last is not None else None,
            "checkpoint": await _checkpoint(db, sign, source, last),
            "hashes": page,
            "next": page[-1][0] if len(rows) > limit else None,
        }

    return router
