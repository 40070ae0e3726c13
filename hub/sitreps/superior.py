"""Sending submitted versions to the hub one level up, at least once, oldest first.

Each submitted version is an outbox row (``forward_next_at`` set in the submitting
transaction). The forwarder POSTs it to the superior's ``/sitreps/inbox`` with this
hub's own token there (``hub.federation.superior.SuperiorHub``: client credentials,
``aud`` = the superior hub); a version the superior already has is a 200
``duplicate``, so retries are harmless. Failures are retried with backoff; a 4xx
other than 401, 408, 425 and 429 is the superior refusing the content for good and
is not retried (the row keeps the error, shown as ``forwardError``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import httpx
from sqlmodel import col, select

from hub.federation.superior import SuperiorHub, SuperiorUnavailable
from hub.sitreps.tables import SitrepVersionRow
from schema.runtime.db import Database
from schema.runtime.outbound import UrlNotAllowed
from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.storage import utcnow

__all__ = ["ReportForwarder"]

_RETRIED_4XX = frozenset({401, 408, 425, 429})


class ReportForwarder:
    """Sends this hub's submitted versions to its superior hub."""

    def __init__(
        self,
        db: Database,
        superior: SuperiorHub,
        *,
        retry_base_s: float,
        retry_max_s: float,
    ) -> None:
        self.db = db
        self.superior = superior
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s

    async def _send(self, row: SitrepVersionRow) -> tuple[bool, str | None]:
        """(done, error): done when delivered, or refused for good."""
        superior = self.superior
        try:
            token = await superior.token()
            response = await superior.http.post(
                f"{superior.url}/sitreps/inbox",
                json=row.body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=superior.timeout_s,
            )
        except SuperiorUnavailable as exc:
            return False, exc.message[:500]
        except UrlNotAllowed as exc:
            return False, f"URL_NOT_ALLOWED: {exc.message}"[:500]
        except httpx.TimeoutException:
            return False, f"timed out after {superior.timeout_s} s"
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return True, None
        error = f"HTTP {response.status_code}: {response.text[:400]}"
        refused = 400 <= response.status_code < 500 and response.status_code not in _RETRIED_4XX
        return refused, error

    async def forward_once(self) -> int:
        """Send every due version once, oldest first; the number the superior took."""
        now = utcnow()
        async with self.db.sessions() as session:
            due = list(
                (
                    await session.execute(
                        select(SitrepVersionRow)
                        .where(col(SitrepVersionRow.forward_next_at) <= now)
                        .order_by(col(SitrepVersionRow.id))
                        .limit(50)
                    )
                ).scalars()
            )
        sent = 0
        for row in due:
            done, error = await self._send(row)
            await self._record(row.id, done=done, error=error, now=utcnow())
            sent += done and error is None
        return sent

    async def _record(
        self, row_id: int | None, *, done: bool, error: str | None, now: datetime
    ) -> None:
        async with self.db.transaction() as session:
            current = await session.get(SitrepVersionRow, row_id, populate_existing=True)
            if current is None:
                return
            current.forward_attempts += 1
            current.forward_error = error
            if done:
                current.forward_next_at = None
                if error is None:
                    current.forwarded_at = now
            else:
                delay = backoff_s(
                    current.forward_attempts, base_s=self.retry_base_s, max_s=self.retry_max_s
                )
                current.forward_next_at = now + timedelta(seconds=delay)

    @contextlib.asynccontextmanager
    async def running(
        self, wake: Callable[[], asyncio.Event], poll_s: float
    ) -> AsyncIterator[ReportForwarder]:
        """Forward in the background: after each submission (``wake``) and every ``poll_s``."""
        async with BackgroundTasks("sitrep forward") as tasks:

            async def forward() -> None:
                await self.forward_once()

            tasks.start(repeat("sitrep forward", forward, interval_s=poll_s, wake=wake))
            yield self
