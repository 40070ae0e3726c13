"""The revocation lists of the higher hubs this hub trusts (``LINLI_TRUSTED_ISSUERS``).

A district hub accepts tokens a city's authorization server signed. The city
publishes what it revokes and disables at ``GET /oauth/revocations`` like every
hub; this hub follows that list as its nodes follow its own: one
``policies.revocations.RevocationPoller`` per trusted issuer (its
``revocations_url``, default ``<issuer>/oauth/revocations``), every
``trusted_revocation_poll_s`` (2 s), verified with the same JWKS its tokens are
checked with. A token of that issuer in its list is refused (``TOKEN_REVOKED``,
``TOKEN_CLIENT_DISABLED``), and an open subscription opened with it is closed
(4401), so a city revocation reaches the district within the city's refresh
plus one poll plus one request: 5 s with the defaults, the bound nodes keep.

A poll that fails keeps the list already held (logged, counted): the district
keeps answering the city's other tokens while the city is unreachable and
catches up at the next poll that succeeds. Each issuer has its own list, so a
city client id never disables a local client of the same name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import httpx

from hub.settings import HubSettings
from policies.caller import Caller
from policies.revocations import REVOCATIONS_PATH, RevocationList, RevocationPoller
from policies.tokens import TokenVerifier

__all__ = ["TrustedRevocations", "trusted_revocations"]


class TrustedRevocations:
    """One poller and list per trusted issuer; ``check`` refuses what the issuer refused."""

    def __init__(self, pollers: Mapping[str, RevocationPoller]) -> None:
        self.pollers = dict(pollers)

    def check(self, caller: Caller) -> None:
        """Raise ``TokenRevoked`` or ``TokenClientDisabled`` if the caller's issuer refused it."""
        poller = self.pollers.get(caller.issuer or "")
        if poller is not None:
            poller.revocations.check(caller)

    @asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """Poll every trusted issuer's list in the background while the hub runs."""
        async with contextlib.AsyncExitStack() as stack:
            for poller in self.pollers.values():
                await stack.enter_async_context(poller.running())
            yield


def trusted_revocations(
    settings: HubSettings,
    verifiers: Mapping[str, TokenVerifier],
    http: httpx.AsyncClient,
    *,
    on_change: Callable[[], None] | None = None,
) -> TrustedRevocations:
    """A poller per trusted issuer, over ``http``, with the keys its tokens are checked with.

    ``on_change`` is called when any list changes (the hub wakes its open subscriptions).
    """
    pollers = {}
    for trusted in settings.trusted_issuers:
        verifier = verifiers[trusted.issuer]
        pollers[trusted.issuer] = RevocationPoller(
            trusted.revocations_url or trusted.issuer.rstrip("/") + REVOCATIONS_PATH,
            issuer=trusted.issuer,
            jwks=verifier.jwks,
            http=http,
            revocations=RevocationList(on_change=on_change),
            interval_s=settings.trusted_revocation_poll_s,
            timeout_s=settings.superior_timeout_s,
        )
    return TrustedRevocations(pollers)
