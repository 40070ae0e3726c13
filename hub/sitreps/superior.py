"""Sending submitted versions to the hub one level up, at least once, in order per report.

Each submitted version is an outbox row (``forward_next_at`` set in the submitting
transaction). The forwarder asks the superior hub's ``/oauth/token`` for a token with
this hub's client there (client credentials, scope ``sitrep:submit``; its audience is
the superior hub itself) and POSTs the version to ``/sitreps/inbox``; a version the
superior already has is a 200 ``duplicate``, so retries are harmless. Failures are
retried with backoff; a 4xx other than 401/429 is the superior refusing the content
and is not retried (the row keeps the error).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import httpx
from sqlmodel import col, select

from hub.sitreps.tables import SitrepVersionRow
from schema.runtime.db import Database
from schema.runtime.outbound import OutboundPolicy, OutboundTransport, UrlNotAllowed
from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.scopes import Scope
from schema.storage import utcnow

__all__ = ["SuperiorHub"]

_RETRIED_4XX = frozenset({401, 408, 425, 429})


class SuperiorHub:
    """The hub one level up, as this hub's reports reach it."""

    def __init__(
        self,
        db: Database,
        outbound: OutboundPolicy,
        *,
        url: str,
        client_id: str,
        client_secret: str,
        timeout_s: float,
        retry_base_s: float,
        retry_max_s: float,
    ) -> None:
        self.db = db
        self.url = url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout_s = timeout_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.http = httpx.AsyncClient(
            transport=OutboundTransport(outbound), follow_redirects=False, timeout=timeout_s
        )
        self._token: tuple[str, float] | None = None

    async def token(self) -> str:
        """A token of this hub's client at the superior (reused until shortly before expiry)."""
        if self._token is not None and self._token[1] > time.monotonic():
            return self._token[0]
        response = await self.http.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials", "scope": Scope.SITREP_SUBMIT.value},
            auth=(self.client_id, self.client_secret),
            timeout=self.timeout_s,
        )
        response.raise_for_status()
        body = response.json()
        lifetime = float(body.get("expires_in", 60))
        self._token = (str(body["access_token"]), time.monotonic() + lifetime / 2)
        return self._token[0]

    async def _send(self, row: SitrepVersionRow) -> tuple[bool, str | None]:
        """(done, error): done when delivered, or refused for good."""
        try:
            token = await self.token()
            response = await self.http.post(
                f"{self.url}/sitreps/inbox",
                json=row.body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout_s,
            )
        except UrlNotAllowed as exc:
            return False, f"URL_NOT_ALLOWED: {exc.message}"[:500]
        except httpx.TimeoutException:
            return False, f"timed out after {self.timeout_s} s"
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"[:500]
        if response.status_code == 401:
            self._token = None
        if 200 <= response.status_code < 300:
            return True, None
        error = f"HTTP {response.status_code}: {response.text[:400]}"
        refused = 400 <= response.status_code < 500 and response.status_code not in _RETRIED_4XX
        return refused, error

    async def forward_once(self) -> int:
        """Send every due version once, oldest first; the number sent."""
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
            await self._record(row.id, done, error, utcnow())
            sent += done and error is None
        return sent

    async def _record(
        self, row_id: int | None, done: bool, error: str | None, now: datetime
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
    ) -> AsyncIterator[SuperiorHub]:
        """Forward in the background: after each submission (``wake``) and every ``poll_s``."""
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.http.aclose)
            tasks = await stack.enter_async_context(BackgroundTasks("sitrep forward"))

            async def round_() -> None:
                await self.forward_once()

            tasks.start(repeat("sitrep forward", round_, interval_s=poll_s, wake=wake))
            yield self
