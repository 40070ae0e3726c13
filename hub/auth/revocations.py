"""The hub's revocations in memory: its own token check, and the list it publishes to sources.

Each replica holds a ``RevocationList`` (``policies.revocations``), changed at
once when it revokes a token, and reloaded from the database every
``revocation_refresh_s`` (revocations and client disables made elsewhere: other
replicas, ``linli clients disable``). ``GET /oauth/revocations`` serves it,
signed, from memory: sources poll it every ``revocation_poll_s``, so a
revocation reaches every source within ``revocation_refresh_s +
revocation_poll_s`` plus one request (5 s with the defaults).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Query
from fastapi.responses import Response
from joserfc import jwt

from hub.auth import service
from hub.auth.keys import KeyRing
from hub.settings import HubSettings
from policies.caller import Caller
from policies.revocations import (
    EXPIRY_MARGIN_S,
    REVOCATIONS_TYPE,
    SINCE_OVERLAP_S,
    Revocation,
    RevocationList,
)
from policies.tokens import TokenExpired
from schema.runtime.db import Database
from schema.runtime.tasks import BackgroundTasks, repeat

__all__ = ["HubRevocations"]

log = logging.getLogger("linli.hub.auth.revocations")


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=value.tzinfo or UTC).timestamp()


class HubRevocations:
    """This replica's view of revoked tokens and disabled clients (see the module docstring)."""

    def __init__(
        self,
        settings: HubSettings,
        db: Database,
        keys: KeyRing,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.db = db
        self.keys = keys
        self.list = RevocationList()
        self._clock = clock
        self._loaded_at: float | None = None
        self._seen: datetime | None = None  # newest revoked_at read from the database
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read revocations since the last load (with overlap) and every disabled client."""
        now = datetime.now(UTC)
        since = None if self._seen is None else self._seen - timedelta(seconds=SINCE_OVERLAP_S)
        started = self._clock()
        async with self.db.sessions() as session:
            rows = await service.live_revocations(
                session,
                revoked_since=since,
                expired_before=now - timedelta(seconds=EXPIRY_MARGIN_S),
            )
            disabled = await service.disabled_client_ids(session)
        self.list.revoke(
            Revocation(row.jti, _epoch(row.expires_at), _epoch(row.revoked_at)) for row in rows
        )
        self.list.set_disabled(disabled)
        self.list.prune()
        for row in rows:
            if self._seen is None or row.revoked_at > self._seen:
                self._seen = row.revoked_at
        if self._seen is None:
            self._seen = now - timedelta(seconds=EXPIRY_MARGIN_S)
        self._loaded_at = started

    async def refresh_if_stale(self) -> None:
        """Reload when the list is older than twice the refresh interval (or never loaded).

        The background loop keeps it fresher; this covers a stalled loop or a hub
        object used without its lifecycle. A failed reload of a list already held
        keeps it (and logs); a list never loaded raises, so no request passes unchecked.
        """
        loaded_at = self._loaded_at
        max_age = 2 * self.settings.revocation_refresh_s
        if loaded_at is not None and self._clock() - loaded_at < max_age:
            return
        async with self._lock:
            if self._loaded_at != loaded_at:  # another task reloaded while this one waited
                return
            try:
                await self.load()
            except Exception:
                if loaded_at is None:
                    raise
                log.exception("could not reload revocations; keeping the ones in memory")

    def revoked(self, *, jti: str, expires_at: datetime) -> None:
        """This replica revoked a token: refuse it from now on."""
        self.list.revoke([Revocation(jti, _epoch(expires_at), time.time())])

    async def check(self, caller: Caller) -> None:
        """Raise ``TokenRevoked`` or ``TokenClientDisabled`` if the caller's token is refused."""
        await self.refresh_if_stale()
        self.list.check(caller)

    def still_valid(self, caller: Caller) -> None:
        """Raise if the token has expired, was revoked or its client disabled (no I/O)."""
        if caller.expires_at is not None and caller.expires_at <= time.time():
            raise TokenExpired("token has expired")
        self.list.check(caller)

    def document(self, since: float | None) -> str:
        """The signed revocation list, revocations from ``since`` (with overlap) on."""
        revoked = self.list.since(since)
        cursor = self.list.cursor
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "iat": time.time(),
            "cursor": cursor if cursor is not None else since,
            "revoked": [{"jti": r.jti, "exp": r.expires_at, "at": r.revoked_at} for r in revoked],
            "disabled_clients": sorted(self.list.disabled),
        }
        key = self.keys.signing_key
        header = {"typ": REVOCATIONS_TYPE, "alg": "ES256", "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=["ES256"])

    async def endpoint(
        self, since: float | None = Query(None, description="cursor of the last list read")
    ) -> Response:
        """``GET /oauth/revocations``: the signed list, served from memory."""
        await self.keys.refresh_if_stale()
        await self.refresh_if_stale()
        return Response(
            self.document(since),
            media_type="application/jwt",
            headers={"Cache-Control": "no-store"},
        )

    @asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """Load at start-up, then reload every ``revocation_refresh_s`` in the background."""
        try:
            await self.load()
        except Exception:
            # Not fatal: readiness reports the database, and checks load on first use.
            log.exception("could not load revocations at start-up")

        async def once() -> None:
            await self.load()

        async with BackgroundTasks("hub revocations") as tasks:
            interval = self.settings.revocation_refresh_s
            tasks.start(repeat("hub revocations", once, interval_s=interval))
            yield
