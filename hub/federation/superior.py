"""The hub of the level above (city or province): how this hub reaches it on its own behalf.

A district hub knows its superior from three settings: ``LINLI_SUPERIOR_URL`` (the
superior hub's base URL), ``LINLI_SUPERIOR_CLIENT_ID`` and
``LINLI_SUPERIOR_CLIENT_SECRET`` (an OAuth client the superior registered for this hub,
``linli auth create-client --org <this hub_id> --kind hub --district <district>`` there).
It gets a token by the client credentials grant at ``<superior>/oauth/token`` (``aud``
= the superior hub) and posts GraphQL to ``<superior>/graphql``: submitting reports,
escalating flags. Reading the other way (the superior federating this hub) needs none
of this: the superior registers this hub as a source and this hub trusts its issuer
(``LINLI_TRUSTED_ISSUERS``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from hub.settings import HubSettings
from schema.errors import LinliError
from schema.runtime.outbound import OutboundTransport

__all__ = ["SUPERIOR_UNAVAILABLE", "SuperiorHub", "SuperiorUnavailable", "superior_hub"]

SUPERIOR_UNAVAILABLE = "SUPERIOR_UNAVAILABLE"

# Renew a token this long before it expires.
_RENEW_MARGIN_S = 30.0


class SuperiorUnavailable(LinliError):
    """The superior hub could not be reached, refused this hub's client, or gave no answer."""

    code = SUPERIOR_UNAVAILABLE


class SuperiorHub:
    """One client of the superior hub: a token of this hub's own, and GraphQL calls with it."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout_s: float,
        http: httpx.AsyncClient,
    ) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.timeout_s = timeout_s
        self.http = http
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """Close the pooled client when the hub stops."""
        try:
            yield
        finally:
            await self.http.aclose()

    async def token(self) -> str:
        """A token for the superior hub (client credentials), reused until shortly before expiry."""
        async with self._lock:
            if self._token is not None and self._token[1] > time.monotonic():
                return self._token[0]
            try:
                response = await self.http.post(
                    f"{self.url}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(self.client_id, self._secret),
                    timeout=self.timeout_s,
                )
                body = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise SuperiorUnavailable(f"no token from the superior hub: {exc!r}") from exc
            if response.status_code != 200 or not isinstance(body.get("access_token"), str):
                raise SuperiorUnavailable(
                    f"the superior hub refused this hub's client ({response.status_code}"
                    f" {str(body.get('error', ''))[:60]})"
                )
            expires_in = float(body.get("expires_in") or 60)
            self._token = (body["access_token"], time.monotonic() + expires_in - _RENEW_MARGIN_S)
            return self._token[0]

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a GraphQL request to the superior hub as this hub; its response object."""
        token = await self.token()
        try:
            response = await self.http.post(
                f"{self.url}/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout_s,
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SuperiorUnavailable(f"the superior hub did not answer: {exc!r}") from exc
        if response.status_code == 401:
            self._token = None  # rotated keys or a revoked token: the next call asks anew
        if not isinstance(body, dict) or not ({"data", "errors"} & body.keys()):
            raise SuperiorUnavailable(f"the superior hub answered HTTP {response.status_code}")
        return body


def superior_hub(settings: HubSettings) -> SuperiorHub | None:
    """The client of the superior hub the settings name; ``None`` at the top of the hierarchy."""
    if settings.superior_url is None:
        return None
    if settings.superior_client_id is None or settings.superior_client_secret is None:
        raise ValueError("LINLI_SUPERIOR_URL needs LINLI_SUPERIOR_CLIENT_ID and _SECRET")
    http = httpx.AsyncClient(
        transport=OutboundTransport(settings.outbound_policy()), follow_redirects=False
    )
    return SuperiorHub(
        settings.superior_url,
        settings.superior_client_id,
        settings.superior_client_secret.get_secret_value(),
        timeout_s=settings.superior_timeout_s,
        http=http,
    )
