"""A source reports its audit chain's new rows to the hub (see ``policies.anchors``).

Every ``audit_anchor_s`` (and at once on ``POST /audit/anchor``, for the
owner's staff with ``audit:read``), the reporter asks the hub where its last
anchor of this source ends, and sends the ``(seq, hash)`` of every row after
it, signed with ``anchor_mac``, in reports of at most ``MAX_ANCHOR_ROWS``. A
source without ``hub_url`` and a hub client reports nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import sqlalchemy as sa
from fastapi import APIRouter, Header

from policies.anchors import ANCHORS_PATH, MAX_ANCHOR_ROWS, anchor_mac
from policies.audit import chain_head, hashes_after
from policies.caller import Authenticator
from policies.hubclient import HubTokens, TokenUnavailable
from policies.source.settings import SourceSettings
from schema.errors import Forbidden, LinliError
from schema.runtime.db import Database
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.scopes import Scope

__all__ = ["AnchorFailed", "AnchorReporter", "Anchored"]

log = logging.getLogger("linli.audit.anchors")

AUDIT_SCOPE = Scope.AUDIT_READ


class AnchorFailed(LinliError):
    """The hub could not be told of the audit chain's head (no hub, unreachable, refused)."""

    code = "ANCHOR_FAILED"


@dataclass(frozen=True, slots=True)
class Anchored:
    """Where the hub's anchor of this source ends after a report, and its signed checkpoint."""

    seq: int
    hash: str
    checkpoint: str | None


class AnchorReporter:
    """Reports one source's audit chain to the hub; see the module docstring."""

    def __init__(
        self, db: Database, table: sa.Table, settings: SourceSettings, source_id: str
    ) -> None:
        self.db = db
        self.table = table
        self.settings = settings
        self.source_id = source_id
        self._http: httpx.AsyncClient | None = None
        self._tokens: HubTokens | None = None
        self.failures = 0  # rounds in a row that could not report

    @property
    def configured(self) -> bool:
        return self.settings.reports_to_hub

    @property
    def _base(self) -> str:
        assert self.settings.hub_url is not None
        return self.settings.hub_url.rstrip("/")

    async def _hub_head(self, http: httpx.AsyncClient) -> tuple[int, str, str | None]:
        response = await http.get(
            f"{self._base}{ANCHORS_PATH}/{self.source_id}",
            params={"after": 2**62},  # no hashes, only the head
        )
        if response.status_code != 200:
            raise AnchorFailed(f"the hub answered {response.status_code} for the anchor head")
        body = response.json()
        head = body.get("head") or {}
        return int(head.get("seq", 0)), str(head.get("hash", "")), body.get("checkpoint")

    async def report(self) -> Anchored:
        """Send every row the hub has not anchored yet; where the anchor ends now."""
        if not self.configured or self._http is None or self._tokens is None:
            raise AnchorFailed("no hub_url and hub client are set: nothing to report to")
        http = self._http
        try:
            seq, digest, checkpoint = await self._hub_head(http)
            while True:
                async with self.db.sessions() as session:
                    local = await chain_head(session, self.table)
                    rows = await hashes_after(session, self.table, seq, MAX_ANCHOR_ROWS)
                    mine = (await hashes_after(session, self.table, seq - 1, 1)) if seq else []
                if local.seq < seq or (mine and mine[0][1] != digest):
                    log.error(
                        "this audit chain (head seq %d) no longer matches the hub's anchor"
                        " (seq %d): rows were removed or changed; run linli audit verify",
                        local.seq,
                        seq,
                    )
                    raise AnchorFailed(f"the audit chain no longer matches its anchor at seq {seq}")
                if not rows:
                    return Anchored(seq, digest, checkpoint)
                seq, digest, checkpoint = await self._send(http, rows)
        except httpx.HTTPError as exc:
            raise AnchorFailed(f"cannot reach the hub: {type(exc).__name__}") from None
        except TokenUnavailable as exc:
            raise AnchorFailed(str(exc)) from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AnchorFailed("the hub's answer is not an anchor document") from None

    async def _send(
        self, http: httpx.AsyncClient, rows: list[tuple[int, str]]
    ) -> tuple[int, str, str | None]:
        assert self._tokens is not None
        key = self.settings.audit_anchor_secret.get_secret_value()
        body = {
            "source": self.source_id,
            "rows": rows,
            "mac": anchor_mac(key, self.source_id, rows),
        }
        for fresh in (False, True):
            token = await self._tokens.get()
            response = await http.post(
                f"{self._base}{ANCHORS_PATH}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                follow_redirects=False,
            )
            if response.status_code == 401 and not fresh:
                self._tokens.forget()
                continue
            break
        if response.status_code != 200:
            raise AnchorFailed(f"the hub refused the anchor: HTTP {response.status_code}"
                               f" {response.text[:200]}")  # fmt: skip
        answer: dict[str, Any] = response.json()
        return int(answer["seq"]), str(answer["hash"]), answer.get("checkpoint")

    async def _round(self) -> None:
        try:
            anchored = await self.report()
        except AnchorFailed as exc:
            self.failures += 1
            # The first round often runs while the hub is still starting: say so quietly,
            # and warn once it has failed twice in a row (then every 30th time).
            level = logging.WARNING if self.failures % 30 == 2 else logging.INFO
            log.log(
                level,
                "audit anchor not reported (%d time(s) in a row; retried every %g s): %s",
                self.failures,
                self.settings.audit_anchor_s,
                exc.message,
            )
        else:
            if self.failures:
                log.info("audit anchor reported again after %d failed round(s)", self.failures)
            self.failures = 0
            log.debug("audit chain anchored at the hub up to seq %d", anchored.seq)

    @contextlib.asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """Report in the background while the source runs (if it has a hub)."""
        if not self.configured:
            yield
            return
        assert self.settings.hub_client_id is not None
        assert self.settings.hub_client_secret is not None
        async with httpx.AsyncClient(timeout=5.0) as http:
            self._http = http
            self._tokens = HubTokens(
                http,
                token_url=f"{self._base}/oauth/token",
                client_id=self.settings.hub_client_id,
                client_secret=self.settings.hub_client_secret,
                audience=self.settings.hub_audience,
                timeout_s=5.0,
            )
            try:
                async with BackgroundTasks("audit anchors") as tasks:
                    interval = self.settings.audit_anchor_s
                    tasks.start(repeat("audit anchors", self._round, interval_s=interval))
                    yield
            finally:
                self._http = self._tokens = None

    def router(self, authenticator: Authenticator, owner: str) -> APIRouter:
        """``POST /audit/anchor``: report now (the owner's staff with ``audit:read``)."""
        router = APIRouter()

        @router.post("/audit/anchor")
        async def anchor_now(
            authorization: Annotated[str | None, Header()] = None,
        ) -> dict[str, Any]:
            caller = await authenticator.authenticate(authorization)
            if caller.org != owner or not caller.has_scope(AUDIT_SCOPE):
                raise Forbidden(
                    f"anchoring the audit log is for the owner's staff with {AUDIT_SCOPE!r}",
                    scope=AUDIT_SCOPE,
                )
            anchored = await self.report()
            return {"seq": anchored.seq, "hash": anchored.hash, "checkpoint": anchored.checkpoint}

        return router
