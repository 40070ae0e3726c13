"""Revoked tokens and disabled clients, as every token check sees them: in memory, bounded.

The hub publishes what it revoked and disabled at ``GET /oauth/revocations``
(``REVOCATIONS_PATH``) as a compact JWS signed with its token-signing key,
``typ`` ``linli-revocations+jwt``, payload::

    {"iss": ..., "iat": ..., "cursor": <newest revoked_at>,
     "revoked": [{"jti": ..., "exp": ..., "at": <revoked_at>}, ...],
     "disabled_clients": [client_id, ...]}

``?since=<cursor>`` returns only revocations from shortly before that cursor
(``SINCE_OVERLAP_S``, so rows committed late by another hub replica are not
missed); ``disabled_clients`` is always the whole (short) list.

Each source runs a ``RevocationPoller`` (every ``revocation_poll_s``, 2 s by
default) that verifies the document with the hub's JWKS, the same keys its
tokens are checked with, and merges it into its ``RevocationList``; the
``BearerAuthenticator`` then refuses those tokens (``TOKEN_REVOKED``,
``TOKEN_CLIENT_DISABLED``). A revoked id is dropped once its token has expired
(plus ``EXPIRY_MARGIN_S``, more than any verifier's leeway), so the list stays
bounded. A poll that fails keeps the list it had: the source never forgets a
refusal because the hub is unreachable, and says so in its log and metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from prometheus_client import CollectorRegistry, Counter, Gauge

from policies.caller import Caller
from policies.tokens import JwksCache, TokenClientDisabled, TokenError, TokenRevoked
from schema.runtime.tasks import BackgroundTasks, repeat

__all__ = [
    "EXPIRY_MARGIN_S",
    "REVOCATIONS_PATH",
    "REVOCATIONS_TYPE",
    "SINCE_OVERLAP_S",
    "Revocation",
    "RevocationList",
    "RevocationListInvalid",
    "RevocationPoller",
    "poll_revocations",
    "revocation_poller",
]

log = logging.getLogger("linli.revocations")

REVOCATIONS_PATH = "/oauth/revocations"
REVOCATIONS_TYPE = "linli-revocations+jwt"
#: Revoked ids outlive their token's ``exp`` by this much: more than any verifier's leeway.
EXPIRY_MARGIN_S = 60.0
#: ``since`` reaches back this far: revocations committed late (other replicas, clock skew).
SINCE_OVERLAP_S = 10.0
_ALGORITHMS = ("ES256",)
_MAX_ENTRIES = 100_000
_REPLAY_SKEW_S = 30.0


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revoked token id, its token's expiry and when it was revoked (epoch seconds)."""

    jti: str
    expires_at: float
    revoked_at: float


class RevocationList:
    """Revoked token ids (until their token expires) and disabled client ids, in memory."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._clock = clock
        self._on_change = on_change
        self._revoked: dict[str, Revocation] = {}
        self._disabled: frozenset[str] = frozenset()
        self._changed = asyncio.Event()

    def refusal(self, caller: Caller) -> TokenError | None:
        """Why the caller's token is refused by this list, if it is."""
        if caller.token_id is not None and caller.token_id in self._revoked:
            return TokenRevoked("token has been revoked")
        if caller.client_id in self._disabled:
            return TokenClientDisabled("token's client is disabled")
        return None

    def check(self, caller: Caller) -> None:
        """Raise ``TokenRevoked`` or ``TokenClientDisabled`` if the list refuses the token."""
        refused = self.refusal(caller)
        if refused is not None:
            raise refused

    def revoke(self, revocations: Iterable[Revocation]) -> None:
        """Add revoked ids (those already expired are ignored)."""
        threshold = self._clock() - EXPIRY_MARGIN_S
        added = False
        for revocation in revocations:
            if revocation.expires_at > threshold and revocation.jti not in self._revoked:
                self._revoked[revocation.jti] = revocation
                added = True
        if added:
            self.notify()

    def set_disabled(self, client_ids: Iterable[str]) -> None:
        """The disabled clients are exactly ``client_ids``."""
        disabled = frozenset(client_ids)
        if disabled != self._disabled:
            self._disabled = disabled
            self.notify()

    def disable(self, client_id: str) -> None:
        """Add one disabled client."""
        self.set_disabled(self._disabled | {client_id})

    def prune(self) -> None:
        """Forget revoked ids whose tokens have expired (with the margin)."""
        threshold = self._clock() - EXPIRY_MARGIN_S
        for jti in [j for j, r in self._revoked.items() if r.expires_at <= threshold]:
            del self._revoked[jti]

    def since(self, cursor: float | None) -> list[Revocation]:
        """Revocations from ``SINCE_OVERLAP_S`` before ``cursor`` on (all of them without one)."""
        self.prune()
        if cursor is None:
            return list(self._revoked.values())
        threshold = cursor - SINCE_OVERLAP_S
        return [r for r in self._revoked.values() if r.revoked_at >= threshold]

    @property
    def cursor(self) -> float | None:
        """The newest ``revoked_at`` in the list."""
        return max((r.revoked_at for r in self._revoked.values()), default=None)

    @property
    def disabled(self) -> frozenset[str]:
        return self._disabled

    def __len__(self) -> int:
        return len(self._revoked)

    def changed(self) -> asyncio.Event:
        """An event set at the next change (take it before checking, then wait on it)."""
        return self._changed

    def notify(self) -> None:
        """Set the current ``changed()`` event (and call ``on_change``): the list changed."""
        self._changed.set()
        self._changed = asyncio.Event()
        if self._on_change is not None:
            self._on_change()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class RevocationListInvalid(Exception):
    """The hub's revocation document is not one this source can trust."""


class _PollerMetrics:
    def __init__(self, poller: RevocationPoller) -> None:
        self.age = Gauge(
            "linli_revocations_age_seconds",
            "Seconds since the hub's revocation list was last fetched (-1: never)",
            registry=None,
        )
        self.age.set_function(poller.age_s)
        self.entries = Gauge(
            "linli_revocations_entries", "Revoked token ids held in memory", registry=None
        )
        self.entries.set_function(lambda: len(poller.revocations))
        self.failures = Counter(
            "linli_revocations_fetch_failures",
            "Polls of the hub's revocation list that failed (the last list is kept)",
            registry=None,
        )


class RevocationPoller:
    """Keeps a source's ``RevocationList`` in step with the hub's (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        issuer: str,
        jwks: JwksCache,
        http: httpx.AsyncClient,
        revocations: RevocationList | None = None,
        interval_s: float = 2.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.issuer = issuer
        self.jwks = jwks
        self.http = http
        self.revocations = revocations or RevocationList(clock=clock)
        self.interval_s = interval_s
        self._timeout = httpx.Timeout(timeout_s)
        self._clock = clock
        self._cursor: float | None = None
        self._issued_at = 0.0
        self.fetched_at: float | None = None
        self.failures = 0  # in a row
        self.metrics = _PollerMetrics(self)

    def age_s(self) -> float:
        """Seconds since the last successful fetch, or -1 before the first."""
        return -1.0 if self.fetched_at is None else self._clock() - self.fetched_at

    def register(self, registry: CollectorRegistry) -> None:
        """Expose the poller's metrics on ``registry`` (the source's ``/metrics``)."""
        for metric in (self.metrics.age, self.metrics.entries, self.metrics.failures):
            registry.register(metric)

    async def poll(self) -> None:
        """Fetch the hub's list once and merge it; on failure keep the list and log."""
        try:
            self._merge(await self._fetch())
        except (httpx.HTTPError, TokenError, RevocationListInvalid) as error:
            self.failures += 1
            self.metrics.failures.inc()
            if self.failures == 1 or self.failures % 30 == 0:
                kept = (
                    "no list fetched yet"
                    if self.fetched_at is None
                    else f"keeping the last one ({len(self.revocations)} revoked ids,"
                    f" {len(self.revocations.disabled)} disabled clients, age {self.age_s():.0f} s)"
                )
                log.warning(
                    "revocation list not refreshed from %s (%s failure(s) in a row: %s); %s",
                    self.url,
                    self.failures,
                    error,
                    kept,
                )
            return
        if self.failures:
            log.info("revocation list refreshed from %s again", self.url)
        self.failures = 0
        self.fetched_at = self._clock()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Poll in the background while the block runs."""

        async def once() -> None:
            await self.poll()

        async with BackgroundTasks("revocation poller") as tasks:
            tasks.start(repeat("revocation poller", once, interval_s=self.interval_s))
            yield

    async def _fetch(self) -> dict[str, Any]:
        params = {} if self._cursor is None else {"since": repr(self._cursor)}
        response = await self.http.get(
            self.url, params=params, timeout=self._timeout, follow_redirects=False
        )
        response.raise_for_status()
        return await self._verify(response.text.strip())

    async def _verify(self, text: str) -> dict[str, Any]:
        try:
            signed = jws.extract_compact(text.encode("ascii"))
        except (JoseError, ValueError, TypeError, UnicodeError) as error:
            raise RevocationListInvalid("not a compact JWS") from error
        header = signed.headers()
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if alg not in _ALGORITHMS or typ != REVOCATIONS_TYPE or not isinstance(kid, str):
            raise RevocationListInvalid("not a revocation list (typ, alg or kid)")
        key = await self.jwks.key(kid)
        registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
        try:
            valid = jws.validate_compact(signed, key, registry=registry)
        except JoseError as error:
            raise RevocationListInvalid("the signature does not verify") from error
        if not valid:
            raise RevocationListInvalid("the signature does not verify")
        try:
            document = json.loads(signed.payload or b"")
        except ValueError as error:
            raise RevocationListInvalid("the payload is not JSON") from error
        if not isinstance(document, dict) or document.get("iss") != self.issuer:
            raise RevocationListInvalid("not issued by the expected issuer")
        issued_at = document.get("iat")
        if not isinstance(issued_at, int | float) or issued_at < self._issued_at - _REPLAY_SKEW_S:
            # Older than one already merged (beyond replicas' clock skew): a replay.
            raise RevocationListInvalid("older than the list already held")
        return document

    def _merge(self, document: dict[str, Any]) -> None:
        revoked = document.get("revoked")
        disabled = document.get("disabled_clients")
        cursor = document.get("cursor")
        if not isinstance(revoked, list) or not isinstance(disabled, list):
            raise RevocationListInvalid("revoked and disabled_clients must be lists")
        if len(revoked) > _MAX_ENTRIES or len(disabled) > _MAX_ENTRIES:
            raise RevocationListInvalid("too many entries")
        entries: list[Revocation] = []
        for entry in revoked:
            jti = entry.get("jti") if isinstance(entry, dict) else None
            exp, at = (entry.get("exp"), entry.get("at")) if isinstance(entry, dict) else (0, 0)
            if (
                isinstance(jti, str)
                and isinstance(exp, int | float)
                and isinstance(at, int | float)
            ):
                entries.append(Revocation(jti, float(exp), float(at)))
        self.revocations.revoke(entries)
        self.revocations.set_disabled(c for c in disabled if isinstance(c, str))
        self.revocations.prune()
        self._issued_at = float(document["iat"])
        if isinstance(cursor, int | float):
            self._cursor = float(cursor)


def revocation_poller(
    *,
    issuer: str | None,
    jwks_url: str | None,
    url: str | None,
    interval_s: float,
    http: httpx.AsyncClient,
) -> RevocationPoller | None:
    """A source's poller of its token issuer's list (default ``<issuer>/oauth/revocations``)."""
    if not issuer or not jwks_url:
        return None
    return RevocationPoller(
        url or issuer.rstrip("/") + REVOCATIONS_PATH,
        issuer=issuer,
        jwks=JwksCache(jwks_url, http),
        http=http,
        interval_s=interval_s,
    )


@asynccontextmanager
async def poll_revocations(poller: RevocationPoller | None) -> AsyncIterator[None]:
    """Run ``poller``, if there is one, while the block runs (a source's lifecycle)."""
    if poller is None:
        yield
        return
    async with poller.running():
        yield
