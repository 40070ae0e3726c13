"""Client-credentials tokens from the hub, for a source that calls the hub (flags, anchors)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

__all__ = ["HubTokens", "TokenUnavailable"]


class TokenUnavailable(Exception):
    """No access token from the hub (unreachable, or it refused the client)."""


class HubTokens:
    """Client-credentials access tokens for the hub, cached until shortly before they expire."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        audience: str | None,
        timeout_s: float,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._audience = audience
        self._timeout_s = timeout_s
        self._scope = scope
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Drop the cached token (the hub said 401): the next call gets a new one."""
        self._token = None

    async def get(self) -> str:
        """A token that is still good for a while."""
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token = None
                self._token, lifetime = await self._fetch()
                # Renew with a tenth of its lifetime (at least 5 s, at most 60 s) left.
                self._renew_at = self._clock() + lifetime - min(60.0, max(5.0, lifetime / 10))
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        if self._audience:
            form["resource"] = self._audience
        try:
            response = await self._http.post(
                self._token_url,
                data=form,
                auth=(self._client_id, self._secret.get_secret_value()),
                timeout=self._timeout_s,
            )
        except httpx.HTTPError as exc:
            raise TokenUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            # The OAuth error code only: the body says nothing secret, but keep logs small.
            raise TokenUnavailable(
                f"token endpoint answered {response.status_code} {_oauth_error(response)}"
            )
        try:
            body = response.json()
            token = body["access_token"]
            lifetime = float(body.get("expires_in", 60))
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenUnavailable("token endpoint answered without an access token") from exc
        if not isinstance(token, str) or not token:
            raise TokenUnavailable("token endpoint answered without an access token")
        return token, max(lifetime, 1.0)


def _oauth_error(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", "")
    except (ValueError, AttributeError):
        return ""
    return str(error)[:60]
